"""OpenAI's Chat Completions through the official SDK; the same code serves any OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

import openai

from promptlab.providers.base import GenerationCall, ProviderError, ProviderResult, Usage
from promptlab.providers.http_errors import classified_errors, rate_limit_headers


class OpenAIProvider:
    """`openai`, or `openai-compatible` (vLLM, Ollama, LM Studio…) by base URL. SDK retries are off."""

    def __init__(self, *, name: str, api_key: str, base_url: str | None) -> None:
        self.name = name
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def generate(self, call: GenerationCall) -> ProviderResult:
        messages: list[dict[str, str]] = [{"role": "system", "content": call.system}] if call.system else []
        messages += [{"role": m.role, "content": m.content} for m in call.messages]
        request: dict[str, Any] = {"model": call.model, "messages": messages}
        # OpenAI's own API wants max_completion_tokens; compatible servers still read max_tokens.
        request["max_completion_tokens" if self.name == "openai" else "max_tokens"] = call.max_tokens
        if call.temperature is not None:
            request["temperature"] = float(call.temperature)
        if call.top_p is not None:
            request["top_p"] = float(call.top_p)
        if call.stop:
            request["stop"] = list(call.stop)
        if call.response_format and call.response_format["type"] == "json_schema":
            schema = {"name": "answer", "schema": call.response_format["schema"], "strict": False}
            request["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif call.response_format:
            request["response_format"] = {"type": "json_object"}
        with classified_errors(openai, provider=self.name, model=call.model, timeout=call.timeout_seconds):
            raw = self._client.chat.completions.with_raw_response.create(**request, timeout=call.timeout_seconds)
            completion = raw.parse()
        if not completion.choices:
            raise ProviderError(code="bad_response", message="the answer had no choices", retryable=True)
        choice = completion.choices[0]
        if choice.finish_reason == "content_filter" or getattr(choice.message, "refusal", None):
            raise ProviderError(code="content_refused", message="the model refused to answer", retryable=False)
        text = choice.message.content or ""
        usage = completion.usage
        cached = 0
        if usage is not None and usage.prompt_tokens_details is not None:
            cached = usage.prompt_tokens_details.cached_tokens or 0
        prompt = usage.prompt_tokens if usage else 0
        return ProviderResult(
            text=text,
            usage=Usage(
                input_tokens=prompt - cached,
                output_tokens=usage.completion_tokens if usage else 0,
                cache_read_tokens=cached,
            ),
            model=completion.model,
            request_id=raw.headers.get("x-request-id") or completion.id,
            finish_reason=choice.finish_reason or "unknown",
            rate_limits=rate_limit_headers(raw.headers),
            truncated=choice.finish_reason == "length" or not text,
        )
