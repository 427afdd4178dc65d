"""Anthropic's Messages request body, shared by the Anthropic API and Anthropic models on Bedrock (batches)."""

from __future__ import annotations

from promptlab.core.json_types import JsonObject
from promptlab.providers import json_output
from promptlab.providers.base import GenerationCall


def system_prompt(call: GenerationCall) -> str | None:
    """The call's system prompt; in JSON mode it also asks for JSON (the worker validates the answer)."""
    if call.response_format:  # no native JSON mode in the Messages API: the system prompt asks for it
        return "\n\n".join(filter(None, [call.system, json_output.instruction(call.response_format)]))
    return call.system


def messages_body(call: GenerationCall) -> JsonObject:
    """The Messages API body of a call, without `model` (the caller adds what its endpoint wants)."""
    body: JsonObject = {
        "max_tokens": call.max_tokens,
        "messages": [{"role": m.role, "content": m.content} for m in call.messages],
    }
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
