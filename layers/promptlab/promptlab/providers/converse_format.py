"""Bedrock's Converse request: turns as content blocks (text, images and documents, tool uses and results)."""

from __future__ import annotations

import base64

from promptlab.core.json_types import JsonObject
from promptlab.providers.base import Attachment, GenerationCall, Message
from promptlab.providers.messages_format import TOOL_PREFIX, tool_input

_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
}


def _attachment(item: Attachment) -> JsonObject:
    """An image or document block of Converse: bytes inline, or an S3 object (Converse takes no URL)."""
    source: JsonObject = (
        {"s3Location": {"uri": item.url}} if item.url and item.url.startswith("s3://")
        else {"bytes": base64.b64decode(item.data or "")}
    )  # fmt: skip
    if item.is_document:
        return {"document": {"format": "pdf", "name": "document", "source": source}}
    return {"image": {"format": _FORMATS.get(item.media_type, "png"), "source": source}}


def converse_content(message: Message) -> list[JsonObject]:
    """One turn's Converse content blocks."""
    if message.role == "tool":
        return [{"toolResult": {"toolUseId": message.tool_call_id, "content": [{"text": message.content}]}}]
    blocks = [_attachment(a) for a in message.attachments]
    if message.content:
        blocks.append({"text": message.content})
    blocks += [{"toolUse": {"toolUseId": c.id, "name": c.name, "input": tool_input(c)}} for c in message.tool_calls]
    return blocks


def converse_messages(messages: list[Message]) -> list[JsonObject]:
    """Converse's alternating turns (tool results are the user's; consecutive turns of one role are one)."""
    out: list[JsonObject] = []
    for message in messages:
        role = "user" if message.role == "tool" else message.role
        if out and out[-1]["role"] == role:
            out[-1]["content"] += converse_content(message)
        else:
            out.append({"role": role, "content": converse_content(message)})
    return out


def tool_config(call: GenerationCall) -> JsonObject | None:
    """Converse's `toolConfig` (None without tools; `none` sends no tools, which Converse cannot say)."""
    if not call.tools or call.tool_choice == "none":
        return None
    config: JsonObject = {
        "tools": [
            {"toolSpec": {"name": t.name, "inputSchema": {"json": t.parameters},
                          **({"description": t.description} if t.description else {})}}
            for t in call.tools
        ]
    }  # fmt: skip
    choice = call.tool_choice
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice and choice.startswith(TOOL_PREFIX):
        config["toolChoice"] = {"tool": {"name": choice.removeprefix(TOOL_PREFIX)}}
    return config
