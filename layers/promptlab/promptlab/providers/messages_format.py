"""Anthropic's Messages request body, shared by the Anthropic API and Anthropic models on Bedrock (batches)."""

from __future__ import annotations

import json
from typing import Any

from promptlab.core.json_types import JsonObject
from promptlab.providers import json_output
from promptlab.providers.base import Attachment, GenerationCall, Message, ToolCall

TOOL_PREFIX = "function:"  # a `tool_choice` naming one tool


def system_prompt(call: GenerationCall) -> str | None:
    """The call's system prompt; in JSON mode it also asks for JSON (the worker validates the answer)."""
    if call.response_format:  # no native JSON mode in the Messages API: the system prompt asks for it
        return "\n\n".join(filter(None, [call.system, json_output.instruction(call.response_format)]))
    return call.system


def _attachment(item: Attachment) -> JsonObject:
    kind = "document" if item.is_document else "image"
    if item.url is not None:
        return {"type": kind, "source": {"type": "url", "url": item.url}}
    return {"type": kind, "source": {"type": "base64", "media_type": item.media_type, "data": item.data}}


def tool_input(call: ToolCall) -> Any:
    """A tool call's arguments as the JSON value the Messages API (and Converse) take."""
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return {}


def _blocks(message: Message) -> list[JsonObject]:
    """One turn as content blocks: text, images and documents, tool uses, or a tool's result."""
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}]
    blocks: list[JsonObject] = [_attachment(a) for a in message.attachments]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c)} for c in message.tool_calls]
    return blocks


def turns(messages: list[Message]) -> list[JsonObject]:
    """The Messages API's alternating turns: tool results are the user's, and consecutive turns of one role
    are one turn. A plain text turn stays a string."""
    out: list[JsonObject] = []
    for message in messages:
        role = "user" if message.role == "tool" else message.role
        plain = message.role != "tool" and not message.attachments and not message.tool_calls
        if out and out[-1]["role"] == role:
            previous = out[-1]["content"]
            merged = [{"type": "text", "text": previous}] if isinstance(previous, str) else previous
            out[-1]["content"] = merged + _blocks(message)
        else:
            out.append({"role": role, "content": message.content if plain else _blocks(message)})
    return out


def tools_body(call: GenerationCall) -> JsonObject:
    """`tools` and `tool_choice` in the Messages API's form (nothing without tools)."""
    if not call.tools:
        return {}
    body: JsonObject = {
        "tools": [
            {"name": t.name, "input_schema": t.parameters, **({"description": t.description} if t.description else {})}
            for t in call.tools
        ]
    }
    choice = call.tool_choice
    if choice == "required":
        body["tool_choice"] = {"type": "any"}
    elif choice == "none":
        body["tool_choice"] = {"type": "none"}
    elif choice and choice.startswith(TOOL_PREFIX):
        body["tool_choice"] = {"type": "tool", "name": choice.removeprefix(TOOL_PREFIX)}
    return body


def messages_body(call: GenerationCall) -> JsonObject:
    """The Messages API body of a call, without `model` (the caller adds what its endpoint wants)."""
    body: JsonObject = {"max_tokens": call.max_tokens, "messages": turns(call.messages), **tools_body(call)}
    system = system_prompt(call)
    if system:
        block: JsonObject = {"type": "text", "text": system}
        if call.cache_system:
            block["cache_control"] = {"type": "ephemeral"}  # prompt caching: a write once, reads after
        body["system"] = [block]
    if call.temperature is not None:
        body["temperature"] = float(call.temperature)
    if call.top_p is not None:
        body["top_p"] = float(call.top_p)
    if call.stop:
        body["stop_sequences"] = list(call.stop)
    return body


def answer_parts(content: list[Any]) -> tuple[str, tuple[ToolCall, ...]]:
    """The text and the tool calls of a Messages answer's content blocks (SDK objects or dicts)."""

    def get(block: Any, name: str) -> Any:
        return block.get(name) if isinstance(block, dict) else getattr(block, name, None)

    text = "".join(get(b, "text") or "" for b in content if get(b, "type") == "text")
    calls = tuple(
        ToolCall(id=str(get(b, "id")), name=str(get(b, "name")), arguments=json.dumps(get(b, "input") or {}))
        for b in content
        if get(b, "type") == "tool_use"
    )
    return text, calls
