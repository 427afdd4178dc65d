"""The OpenAI-compatible door's wire: a job's answer as a `chat.completion` (or its Server-Sent Events), and
every error under `/v1/` in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.

The statuses follow OpenAI's: 400 for a bad parameter (PromptLab's 422), 401, 404 for an unknown model, 429
for a rate limit and for a spent budget (`insufficient_quota`), 5xx for failures worth a retry.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response

from promptlab.core.json_types import JsonObject, LambdaEvent
from promptlab.jobs import openai_answers
from promptlab.jobs.openai_answers import completion
from promptlab.models.jobs import JobPublic
from promptlab.models.openai_chat import (
    ChatCompletion,
    ChatRequest,
)

PREFIX = "/v1/"
JOB_HEADER = "x-promptlab-job-id"
# PromptLab's error code → (OpenAI status, type, code).
_ERRORS: dict[str, tuple[int, str, str | None]] = {
    "bad_request": (400, "invalid_request_error", None),
    "unauthorized": (401, "invalid_request_error", "invalid_api_key"),
    "forbidden": (403, "invalid_request_error", "forbidden"),
    "budget_exceeded": (429, "insufficient_quota", "insufficient_quota"),
    "not_found": (404, "invalid_request_error", None),
    "conflict": (409, "invalid_request_error", "conflict"),
    "precondition_failed": (412, "invalid_request_error", None),
    "payload_too_large": (413, "invalid_request_error", "request_too_large"),
    "unsupported_media_type": (415, "invalid_request_error", None),
    "validation_error": (400, "invalid_request_error", "invalid_value"),
    "rate_limited": (429, "requests", "rate_limit_exceeded"),
    "dependency_unavailable": (503, "server_error", "service_unavailable"),
}


def error_body(message: str, kind: str, code: str | None, param: str | None = None) -> str:
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}, ensure_ascii=False)


def openai_error(answer: LambdaEvent) -> LambdaEvent:
    """A PromptLab error answer in OpenAI's shape (statuses mapped); other answers unchanged."""
    status = int(answer.get("statusCode", 200))
    if status < 400:
        return answer
    try:
        error = json.loads(answer.get("body") or "{}").get("error") or {}
    except (ValueError, AttributeError):
        return answer
    if "type" in error or "code" not in error:  # already OpenAI's, or not an error body of ours
        return answer
    details: JsonObject = error.get("details") or {}
    mapped_status, kind, code = _ERRORS.get(error["code"], (status, "server_error", error["code"]))
    fields = details.get("fields") or []
    param = details.get("param") or (fields[0]["field"] if fields else None)
    return {
        **answer,
        "statusCode": mapped_status,
        "body": error_body(error.get("message", ""), kind, details.get("openaiCode") or code, param),
    }


def event_stream(answer: ChatCompletion, *, include_usage: bool) -> str:
    """The answer as OpenAI's `chat.completion.chunk` events, ending with `data: [DONE]` (all at once: an API
    Gateway proxy answer is one body)."""
    base = {"id": answer.id, "object": "chat.completion.chunk", "created": answer.created, "model": answer.model}
    choice = answer.choices[0]
    content = choice.message.content or ""
    pieces = [content[i : i + 200] for i in range(0, len(content), 200)] or [""]
    chunks: list[JsonObject] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                      "finish_reason": None}]}]  # fmt: skip
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in pieces]
    for n, call in enumerate(choice.message.tool_calls or ()):
        delta = {"tool_calls": [{"index": n, **call.model_dump()}]}
        chunks.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.finish_reason}]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": answer.usage.model_dump()})
    lines = [f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n" for chunk in chunks]
    return "".join(lines) + "data: [DONE]\n\n"


def chat_answer(chat: ChatRequest, job: JobPublic) -> Response[str]:
    """What `POST /v1/chat/completions` answers for its job as it stands after the wait."""
    if job.status in ("failed", "cancelled"):
        return ended_badly(job)
    if job.status != "completed":
        return still_running(job)
    answer = completion(job)
    headers = {JOB_HEADER: job.id, "x-promptlab-cache": "hit" if job.cache_hit else "miss"}
    if chat.stream:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        body = event_stream(answer, include_usage=include_usage)
        return Response(status_code=200, content_type="text/event-stream", body=body, headers=headers)
    return Response(status_code=200, content_type="application/json", body=answer.model_dump_json(), headers=headers)


def proxy_answer(response: Response[str]) -> LambdaEvent:
    """A route's answer as an API Gateway proxy answer (for the fast path, which runs before routing)."""
    headers = {"Content-Type": response.content_type or "application/json", **response.headers}
    return {
        "statusCode": response.status_code,
        "isBase64Encoded": False,
        "body": response.body,
        "multiValueHeaders": {name: [str(value)] for name, value in headers.items()},
    }


def ended_badly(job: JobPublic) -> Response[str]:
    """A job that failed or was cancelled, as OpenAI's error (`openai_answers.failure`)."""
    status, error = openai_answers.failure(job)
    return _error(status, error["message"], error["type"], error["code"], {JOB_HEADER: job.id}, param=error["param"])


def still_running(job: JobPublic) -> Response[str]:
    """The wait is over and the job is not: 504 with its id (it goes on; the same request again waits for the
    same job, joined in flight or answered from the cache)."""
    return _error(
        504,
        f"job {job.id} is still {job.status}: it goes on. Send the same request again to wait for it (or read"
        f" GET /jobs/{job.id})",
        "timeout",
        "job_pending",
        {JOB_HEADER: job.id, "Retry-After": "1"},
    )


def _error(
    status: int, message: str, kind: str, code: str | None, headers: dict[str, str], param: str | None = None
) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=error_body(message, kind, code, param),
        headers=headers,
    )
