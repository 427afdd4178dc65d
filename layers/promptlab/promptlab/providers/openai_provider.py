"""OpenAI's Chat Completions through the official SDK; the same code serves any OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from promptlab.core.json_types import JsonObject
from promptlab.providers.base import (
    Attachment,
    BatchItem,
    BatchStatus,
    GenerationCall,
    Message,
    ProviderError,
    ProviderResult,
    ToolCall,
    Usage,
    error_for_status,
)
from promptlab.providers.http_errors import SdkErrors, classified_errors, rate_limit_headers
from promptlab.providers.messages_format import TOOL_PREFIX

_ERRORS = SdkErrors(
    timeout=openai.APITimeoutError,
    connection=openai.APIConnectionError,
    status=openai.APIStatusError,
    unreadable=openai.APIResponseValidationError,
)


def _part(item: Attachment) -> JsonObject:
    if item.is_document:
        return {
            "type": "file",
            "file": {"filename": "document.pdf", "file_data": f"data:{item.media_type};base64,{item.data}"},
        }
    url = item.url or f"data:{item.media_type};base64,{item.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def chat_message(message: Message) -> JsonObject:
    """One turn in Chat Completions' form: text (with image and file parts), tool calls, or a tool's result."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.attachments:
        parts = [_part(a) for a in message.attachments]
        content: Any = ([{"type": "text", "text": message.content}] if message.content else []) + parts
    else:
        content = message.content
    out: JsonObject = {"role": message.role, "content": content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def tools_body(call: GenerationCall) -> JsonObject:
    """`tools` and `tool_choice` in Chat Completions' form (nothing without tools)."""
    if not call.tools:
        return {}
    tools = [
        {"type": "function", "function": {"name": t.name, "parameters": t.parameters,
                                          **({"description": t.description} if t.description else {})}}
        for t in call.tools
    ]  # fmt: skip
    body: JsonObject = {"tools": tools}
    choice = call.tool_choice
    if choice and choice.startswith(TOOL_PREFIX):
        body["tool_choice"] = {"type": "function", "function": {"name": choice.removeprefix(TOOL_PREFIX)}}
    elif choice:
        body["tool_choice"] = choice
    return body


class OpenAIProvider:
    """`openai`, or `openai-compatible` (vLLM, Ollama, LM Studio…) by base URL. SDK retries are off."""

    def __init__(self, *, name: str, api_key: str, base_url: str | None) -> None:
        self.name = name
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def _params(self, call: GenerationCall) -> JsonObject:
        """The Chat Completions request body for a call (the same for one call and for a batch line)."""
        messages: list[JsonObject] = [{"role": "system", "content": call.system}] if call.system else []
        messages += [chat_message(m) for m in call.messages]
        request: JsonObject = {"model": call.model, "messages": messages, **tools_body(call)}
        # OpenAI's own API wants max_completion_tokens; compatible servers still read max_tokens.
        request["max_completion_tokens" if self.name == "openai" else "max_tokens"] = call.max_tokens
        if call.temperature is not None:
            request["temperature"] = float(call.temperature)
        if call.top_p is not None:
            request["top_p"] = float(call.top_p)
        if call.stop:
            request["stop"] = list(call.stop)
        if call.seed is not None:
            request["seed"] = call.seed
        if call.response_format and call.response_format["type"] == "json_schema":
            schema = {"name": "answer", "schema": call.response_format["schema"], "strict": False}
            request["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif call.response_format:
            request["response_format"] = {"type": "json_object"}
        return request

    def generate(self, call: GenerationCall) -> ProviderResult:
        request = self._params(call)
        with classified_errors(_ERRORS, provider=self.name, model=call.model, timeout=call.timeout_seconds):
            raw = self._client.chat.completions.with_raw_response.create(**request, timeout=call.timeout_seconds)
            completion = raw.parse()
        return self._result(completion, raw.headers.get("x-request-id"), rate_limit_headers(raw.headers))

    def _result(self, completion: Any, request_id: str | None, rate_limits: dict[str, str]) -> ProviderResult:
        if not completion.choices:
            raise ProviderError(code="bad_response", message="the answer had no choices", retryable=True)
        choice = completion.choices[0]
        if choice.finish_reason == "content_filter" or getattr(choice.message, "refusal", None):
            raise ProviderError(code="content_refused", message="the model refused to answer", retryable=False)
        text = choice.message.content or ""
        tool_calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in choice.message.tool_calls or []
            if getattr(c, "function", None) is not None
        )
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
            request_id=request_id or completion.id,
            finish_reason=choice.finish_reason or "unknown",
            rate_limits=rate_limits,
            truncated=choice.finish_reason == "length" or not (text or tool_calls),
            tool_calls=tool_calls,
        )

    # The Batch API: a JSONL file of requests, results as output and error files, about half price.

    @staticmethod
    def _status(batch: Any) -> BatchStatus:
        counts = batch.request_counts
        done = counts.completed if counts else 0
        failed = counts.failed if counts else 0
        total = counts.total if counts else 0
        ended = batch.status in {"completed", "failed", "expired", "cancelled"}
        return BatchStatus(
            provider_batch_id=batch.id,
            ended=ended,
            counts={
                "succeeded": done, "errored": failed,
                "expired": total - done - failed if batch.status == "expired" else 0,
                "canceled": total - done - failed if batch.status == "cancelled" else 0,
            },
            expires_at=datetime.fromtimestamp(batch.expires_at, UTC) if batch.expires_at else None,
        )  # fmt: skip

    def submit_batch(self, calls: list[tuple[str, GenerationCall]]) -> BatchStatus:
        lines = [
            {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": self._params(call)}
            for custom_id, call in calls
        ]
        payload = "\n".join(json.dumps(line, separators=(",", ":")) for line in lines).encode()
        with classified_errors(_ERRORS, provider=self.name, model=calls[0][1].model, timeout=60):
            uploaded = self._client.files.create(file=("promptlab-batch.jsonl", payload), purpose="batch", timeout=60)
            batch = self._client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", timeout=60
            )
        return self._status(batch)

    def batch_status(self, provider_batch_id: str) -> BatchStatus:
        with classified_errors(_ERRORS, provider=self.name, model="batch", timeout=30):
            return self._status(self._client.batches.retrieve(provider_batch_id, timeout=30))

    def batch_results(self, provider_batch_id: str) -> Iterator[BatchItem]:
        with classified_errors(_ERRORS, provider=self.name, model="batch", timeout=120):
            batch = self._client.batches.retrieve(provider_batch_id, timeout=30)
            texts = [
                self._client.files.content(file_id, timeout=120).text
                for file_id in (batch.output_file_id, batch.error_file_id)
                if file_id
            ]
        for text in texts:
            for raw_line in text.splitlines():
                if raw_line.strip():
                    yield self._item(json.loads(raw_line))
        # Requests with no line (an expired or cancelled batch) are settled by the economy lane as expired.

    def _item(self, line: JsonObject) -> BatchItem:
        custom_id = str(line["custom_id"])
        response = line.get("response") or {}
        status = int(response.get("status_code") or 500)
        if status == 200:
            try:
                result = self._result(ChatCompletion.model_validate(response["body"]), response.get("request_id"), {})
            except ProviderError as refused:
                return BatchItem(custom_id=custom_id, kind="errored", error=refused)
            return BatchItem(custom_id=custom_id, kind="succeeded", result=result)
        error = (response.get("body") or {}).get("error") or line.get("error") or {}
        message = str(error.get("message") or f"the batch request answered {status}")
        return BatchItem(custom_id=custom_id, kind="errored", error=error_for_status(status, message))
