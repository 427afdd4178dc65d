"""A job as OpenAI's Chat Completions API words it: the request parsed, the answer as a `chat.completion`, a
failure as OpenAI's error, for the chat door and for a batch's output and error files alike."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from promptlab.core.errors import ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.validation import validation_fields
from promptlab.models.jobs import JobPublic
from promptlab.models.openai_chat import (
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    Choice,
    CompletionUsage,
    PromptTokensDetails,
    ToolCallOut,
)

# Each provider's stop reasons as OpenAI's `finish_reason`.
FINISH_REASONS = {
    "stop": "stop", "end_turn": "stop", "stop_sequence": "stop", "complete": "stop",
    "length": "length", "max_tokens": "length",
    "content_filter": "content_filter", "content_filtered": "content_filter", "refusal": "content_filter",
    "tool_use": "tool_calls", "tool_calls": "tool_calls",
}  # fmt: skip


def parse_chat(body: Any) -> ChatRequest:
    """The request, or a 400 naming the first bad parameter (an unknown one as OpenAI words it)."""
    try:
        return ChatRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = validation_fields([dict(first)])[0]
        if first["type"] == "extra_forbidden":
            refused = ValidationFailed.single(
                field["field"], f"Unrecognized request argument supplied: {field['field']} (not supported here)"
            )
            refused.details["openaiCode"] = "unsupported_parameter"
            raise refused from None
        raise ValidationFailed.single(field["field"], f"{field['field']}: {field['message']}") from None


def completion(job: JobPublic) -> ChatCompletion:
    """The finished job as OpenAI's `chat.completion`."""
    finish = "length" if job.truncated and job.finish_reason in (None, "max_tokens", "length") else job.finish_reason
    cached = job.cache_read_tokens or 0
    prompt = (job.input_tokens or 0) + cached + (job.cache_write_tokens or 0)
    answered_by = (job.answered_by or "").partition("/")[2]
    calls = [ToolCallOut(id=c.id, function={"name": c.name, "arguments": c.arguments}) for c in job.tool_calls or ()]
    reason = "tool_calls" if calls else FINISH_REASONS.get(finish or "stop", "stop")
    return ChatCompletion(
        id=f"chatcmpl-{job.id}",
        created=int(job.created_at.timestamp()),
        model=answered_by or job.model,
        choices=[
            Choice(
                message=AssistantMessage(content=job.output or (None if calls else ""), tool_calls=calls or None),
                finish_reason=reason,
            )
        ],
        usage=CompletionUsage(
            prompt_tokens=prompt,
            completion_tokens=job.output_tokens or 0,
            total_tokens=prompt + (job.output_tokens or 0),
            prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
        ),
    )


def failure(job: JobPublic) -> tuple[int, JsonObject]:
    """A job that failed or was cancelled as OpenAI's status and error: the provider's own refusal of the
    request (400, 404) as such, anything worth another try as 502 (an SDK retries it as a new job)."""
    error = job.error

    def shaped(
        status: int, message: str, kind: str, code: str | None, param: str | None = None
    ) -> tuple[int, JsonObject]:
        return status, {"message": message, "type": kind, "param": param, "code": code}

    if job.status == "cancelled" or error is None:
        return shaped(409, f"job {job.id} was cancelled", "invalid_request_error", "job_cancelled")
    message = f"{error.message} (job {job.id})"
    if error.provider_status in (400, 413, 422):
        return shaped(400, message, "invalid_request_error", error.code)
    if error.provider_status == 404 or error.code == "model_not_found":
        return shaped(404, message, "invalid_request_error", "model_not_found", param="model")
    if error.code == "rate_limited":
        return shaped(429, message, "requests", "rate_limit_exceeded")
    return shaped(502, message, "api_error", error.code)
