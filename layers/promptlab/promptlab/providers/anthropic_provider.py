"""Anthropic's Messages API through the official SDK (imported only here, only by the worker)."""

from __future__ import annotations

from typing import Any

import anthropic

from promptlab import json_output
from promptlab.providers.base import GenerationCall, ProviderError, ProviderResult, Usage
from promptlab.providers.http_errors import classified_errors, rate_limit_headers


class AnthropicProvider:
    """Claude models. SDK retries are off: the job queue owns retries."""

    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None) -> None:
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0)

    def generate(self, call: GenerationCall) -> ProviderResult:
        request: dict[str, Any] = {
            "model": call.model,
            "max_tokens": call.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in call.messages],
        }
        system = call.system
        if call.response_format:  # no native JSON mode in the Messages API: the system prompt asks for it
            system = "\n\n".join(filter(None, [system, json_output.instruction(call.response_format)]))
        if system:
            block: dict[str, Any] = {"type": "text", "text": system}
            if call.cache_system:
                block["cache_control"] = {"type": "ephemeral"}  # prompt caching: a write once, reads after
            request["system"] = [block]
        extra: dict[str, Any] = {}
        if call.temperature is not None:
            # This SDK generation has no `temperature` argument; the Messages API still reads the field.
            extra["temperature"] = float(call.temperature)
        if call.top_p is not None:
            extra["top_p"] = float(call.top_p)
        if extra:
            request["extra_body"] = extra
        if call.stop:
            request["stop_sequences"] = list(call.stop)
        with classified_errors(anthropic, provider=self.name, model=call.model, timeout=call.timeout_seconds):
            raw = self._client.messages.with_raw_response.create(**request, timeout=call.timeout_seconds)
            message = raw.parse()
        if message.stop_reason == "refusal":
            raise ProviderError(code="content_refused", message="the model refused to answer", retryable=False)
        text = "".join(block.text for block in message.content if block.type == "text")
        usage = message.usage
        return ProviderResult(
            text=text,
            usage=Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_input_tokens or 0,
                cache_write_tokens=usage.cache_creation_input_tokens or 0,
            ),
            model=message.model,
            request_id=raw.headers.get("request-id") or message.id,
            finish_reason=message.stop_reason or "unknown",
            rate_limits=rate_limit_headers(raw.headers),
            truncated=message.stop_reason == "max_tokens" or not text,
        )
