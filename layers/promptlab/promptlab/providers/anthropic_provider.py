"""Anthropic's Messages API through the official SDK (imported only here, only by the worker)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic

from promptlab.core.json_types import JsonObject
from promptlab.providers.base import (
    BatchItem,
    BatchStatus,
    GenerationCall,
    ProviderError,
    ProviderResult,
    Usage,
    error_for_status,
)
from promptlab.providers.http_errors import SdkErrors, classified_errors, rate_limit_headers
from promptlab.providers.messages_format import answer_parts, messages_body

_ERRORS = SdkErrors(
    timeout=anthropic.APITimeoutError,
    connection=anthropic.APIConnectionError,
    status=anthropic.APIStatusError,
    unreadable=anthropic.APIResponseValidationError,
)


class AnthropicProvider:
    """Claude models. SDK retries are off: the job queue owns retries."""

    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None) -> None:
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=0)

    def _params(self, call: GenerationCall) -> JsonObject:
        """The Messages API request body for a call (the same for one call and for a batch)."""
        return {"model": call.model, **messages_body(call)}

    def generate(self, call: GenerationCall) -> ProviderResult:
        request = self._params(call)
        # This SDK generation has no `temperature`/`top_p` arguments; the Messages API still reads the fields.
        extra = {k: request.pop(k) for k in ("temperature", "top_p") if k in request}
        if extra:
            request["extra_body"] = extra
        with classified_errors(_ERRORS, provider=self.name, model=call.model, timeout=call.timeout_seconds):
            raw = self._client.messages.with_raw_response.create(**request, timeout=call.timeout_seconds)
            message = raw.parse()
        return self._result(message, raw.headers.get("request-id"), rate_limit_headers(raw.headers))

    def _result(self, message: Any, request_id: str | None, rate_limits: dict[str, str]) -> ProviderResult:
        if message.stop_reason == "refusal":
            raise ProviderError(code="content_refused", message="the model refused to answer", retryable=False)
        text, tool_calls = answer_parts(list(message.content))
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
            request_id=request_id or message.id,
            finish_reason=message.stop_reason or "unknown",
            rate_limits=rate_limits,
            truncated=message.stop_reason == "max_tokens" or not (text or tool_calls),
            tool_calls=tool_calls,
        )

    # Message Batches: about half price, results within 24 h.

    def _status(self, batch: Any) -> BatchStatus:
        counts = batch.request_counts
        return BatchStatus(
            provider_batch_id=batch.id,
            ended=batch.processing_status == "ended",
            counts={
                "succeeded": counts.succeeded, "errored": counts.errored, "expired": counts.expired,
                "canceled": counts.canceled, "processing": counts.processing,
            },
            expires_at=batch.expires_at,
        )  # fmt: skip

    def submit_batch(self, calls: list[tuple[str, GenerationCall]]) -> BatchStatus:
        requests = [{"custom_id": custom_id, "params": self._params(call)} for custom_id, call in calls]
        with classified_errors(_ERRORS, provider=self.name, model=calls[0][1].model, timeout=60):
            batch = self._client.messages.batches.create(requests=requests, timeout=60)  # type: ignore[arg-type]
        return self._status(batch)

    def batch_status(self, provider_batch_id: str) -> BatchStatus:
        with classified_errors(_ERRORS, provider=self.name, model="batch", timeout=30):
            return self._status(self._client.messages.batches.retrieve(provider_batch_id, timeout=30))

    def batch_results(self, provider_batch_id: str) -> Iterator[BatchItem]:
        with classified_errors(_ERRORS, provider=self.name, model="batch", timeout=120):
            lines = list(self._client.messages.batches.results(provider_batch_id, timeout=120))
        for line in lines:
            result = line.result
            if result.type == "succeeded":
                try:
                    answer = self._result(result.message, None, {})
                except ProviderError as refused:
                    yield BatchItem(custom_id=line.custom_id, kind="errored", error=refused)
                    continue
                yield BatchItem(custom_id=line.custom_id, kind="succeeded", result=answer)
            elif result.type == "errored":
                detail = result.error.error
                status = ANTHROPIC_ERROR_STATUS.get(detail.type, 500)
                yield BatchItem(
                    custom_id=line.custom_id, kind="errored", error=error_for_status(status, detail.message)
                )
            else:
                yield BatchItem(custom_id=line.custom_id, kind=result.type)


# Anthropic's error types (in batch results) as the HTTP statuses they stand for.
ANTHROPIC_ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "overloaded_error": 529, "timeout_error": 504,
}  # fmt: skip
