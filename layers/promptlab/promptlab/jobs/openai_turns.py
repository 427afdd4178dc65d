"""An OpenAI-style chat's messages and tools in the job's stored form (see `jobs/turns.py`).

Text and text parts, images (`image_url`: a `data:` URL, https, or `s3://` in the stack's bucket), PDFs
(`file` parts with `file_data`), the assistant's `tool_calls` and `tool` results. Consecutive user (or
assistant) messages are one turn; `developer` is `system`. A part this server cannot send is a 400 naming it.
"""

from __future__ import annotations

import re
from typing import Any

from promptlab.core.errors import ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.jobs.turns import check_sequence
from promptlab.models.openai_chat import ChatRequest, ChatTurn

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>[A-Za-z0-9+/=\s]+)$", re.DOTALL)
_BY_EXTENSION = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
                 "webp": "image/webp", "pdf": "application/pdf"}  # fmt: skip
MEDIA_TYPES = frozenset(_BY_EXTENSION.values())


def _attachment(url: str, where: str) -> JsonObject:
    """An image or PDF reference as the stored form's attachment."""
    data = _DATA_URL.match(url)
    if data is not None:
        media_type, payload = data.group("type"), data.group("data")
    elif url.startswith(("https://", "s3://")):
        media_type = _BY_EXTENSION.get(url.rsplit("?", 1)[0].rsplit(".", 1)[-1].lower(), "image/jpeg")
        payload = None
    else:
        raise ValidationFailed.single(where, "send a data: URL (base64), an https:// URL or an s3:// key")
    if media_type not in MEDIA_TYPES:
        raise ValidationFailed.single(where, f"{media_type} is not taken: images (png, jpeg, gif, webp) or PDF")
    return {"mediaType": media_type, "data": payload} if payload else {"mediaType": media_type, "url": url}


def _part(part: Any, where: str) -> tuple[str | None, JsonObject | None]:
    """One content part: (its text, or its attachment)."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return part["text"], None
    if (
        kind == "image_url"
        and isinstance(part.get("image_url"), dict)
        and isinstance(part["image_url"].get("url"), str)
    ):
        return None, _attachment(part["image_url"]["url"], f"{where}.image_url.url")
    if kind == "file" and isinstance(part.get("file"), dict):
        if not isinstance(part["file"].get("file_data"), str):
            raise ValidationFailed.single(f"{where}.file", "send the file inline (`file_data`); file ids are not kept")
        return None, _attachment(part["file"]["file_data"], f"{where}.file.file_data")
    raise ValidationFailed.single(where, f"content parts of type {kind!r} are not supported: text, image_url, file")


def _content(turn: ChatTurn, where: str) -> tuple[str, list[JsonObject]]:
    if turn.content is None or isinstance(turn.content, str):
        return turn.content or "", []
    texts, attachments = [], []
    for n, part in enumerate(turn.content):
        text, attachment = _part(part, f"{where}.content[{n}]")
        if text is not None:
            texts.append(text)
        if attachment is not None:
            attachments.append(attachment)
    return "\n".join(texts), attachments


def _tool_calls(turn: ChatTurn, where: str) -> list[JsonObject]:
    calls = []
    for n, call in enumerate(turn.tool_calls or ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str) or not function.get("name"):
            raise ValidationFailed.single(f"{where}.tool_calls[{n}]", "a tool call needs its id and function name")
        calls.append(
            {"id": call["id"], "name": str(function["name"]), "arguments": str(function.get("arguments") or "{}")}
        )
    return calls


def _turn(turn: ChatTurn, index: int) -> JsonObject:
    where = f"messages[{index}]"
    role = "system" if turn.role == "developer" else turn.role
    text, attachments = _content(turn, where)
    stored: JsonObject = {"role": role, "content": text}
    if attachments:
        if role != "user":
            raise ValidationFailed.single(f"{where}.content", "only user messages carry images and files")
        stored["attachments"] = attachments
    if role == "assistant" and turn.tool_calls:
        stored["toolCalls"] = _tool_calls(turn, where)
    if role == "tool":
        if not turn.tool_call_id:
            raise ValidationFailed.single(f"{where}.tool_call_id", "a tool message names the call it answers")
        stored["toolCallId"] = turn.tool_call_id
    elif turn.tool_call_id:
        raise ValidationFailed.single(f"{where}.tool_call_id", "only tool messages answer a tool call")
    if not (text or attachments or stored.get("toolCalls")) and role != "tool":
        raise ValidationFailed.single(f"{where}.content", "a message needs content")
    return stored


def turns_of(chat: ChatRequest) -> list[JsonObject]:
    """The chat's turns in the stored form, checked (the first spoken turn the user's, each tool result
    answering a call, the last the user's or a tool's)."""
    turns: list[JsonObject] = []
    origin: list[int] = []  # each stored turn's (first) message index, for the errors
    for index, message in enumerate(chat.messages):
        turn = _turn(message, index)
        last = turns[-1] if turns else None
        if last is not None and last["role"] == turn["role"] and turn["role"] in {"user", "assistant"}:
            last["content"] = "\n\n".join(t for t in (last["content"], turn["content"]) if t)
            for key in ("attachments", "toolCalls"):
                if turn.get(key):
                    last[key] = [*(last.get(key) or []), *turn[key]]
            continue
        turns.append(turn)
        origin.append(index)
    check_sequence(turns, lambda i: f"messages[{origin[i]}]")
    return turns


def tools_of(chat: ChatRequest) -> tuple[list[JsonObject] | None, str | None]:
    """The chat's tools as `POST /generate` takes them, and its tool choice (`function:<name>` for one)."""
    tools = [
        {"name": t.function.name, "parameters": t.function.parameters or {"type": "object", "properties": {}},
         **({"description": t.function.description} if t.function.description else {})}
        for t in chat.tools or ()
    ]  # fmt: skip
    choice = chat.tool_choice
    named = choice if isinstance(choice, str) or choice is None else f"function:{choice.function.name}"
    return tools or None, named
