"""The API's error answers as typed exceptions: each carries `status`, `code`, `message`, `request_id`, `fields`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One bad field of a request, as the API names it (`input.words`, `maxTokens`, …)."""

    field: str
    message: str


class PromptLabClientError(Exception):
    """Base of every error the client raises."""


class ApiUnreachable(PromptLabClientError):
    """Nothing answered at the API's URL (connection refused, DNS, TLS, or no answer in time)."""

    def __init__(self, url: str, reason: object) -> None:
        self.url, self.reason = url, reason
        super().__init__(f"nothing answers at {url} ({reason})")


class JobWaitTimeout(PromptLabClientError):
    """A job did not end within the time the caller was willing to wait (the job goes on)."""

    def __init__(self, job_id: str, seconds: float) -> None:
        self.job_id, self.seconds = job_id, seconds
        super().__init__(f"job {job_id} did not end within {seconds:g} s (it is still running)")


class ApiError(PromptLabClientError):
    """An error answer of the API: `{"error": {"code", "message", "requestId", "details"}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.request_id, self.details, self.retry_after = request_id, details or {}, retry_after
        raw = self.details.get("fields")
        self.fields = [
            FieldError(field=str(f.get("field")), message=str(f.get("message")))
            for f in (raw if isinstance(raw, list) else [])
            if isinstance(f, dict)
        ]
        named = "; ".join(f"{f.field}: {f.message}" for f in self.fields if f.field not in message)
        super().__init__(f"{status} {code}: {message}" + (f" ({named})" if named else ""))

    @property
    def requestId(self) -> str | None:  # noqa: N802 - the API's own name, for those who look for it
        return self.request_id


class BadRequest(ApiError):
    """400: the request cannot be read (malformed JSON, a bad header)."""


class Unauthorized(ApiError):
    """401: no key, an unknown key, or a revoked one."""


class BudgetExceeded(ApiError):
    """402: the key's monthly budget does not cover the worst case of this request."""


class NotFound(ApiError):
    """404: no such resource for this tenant."""


class Conflict(ApiError):
    """409: the resource is in a state that does not allow this (e.g. cancelling an ended job)."""


class PreconditionFailed(ApiError):
    """412: `If-Match` named another version than the current one."""


class PayloadTooLarge(ApiError):
    """413: the body, or the prompt it would render, is over the limit."""


class ValidationError(ApiError):
    """422: a field is not valid; `fields` names each one."""


class RateLimited(ApiError):
    """429: over the key's request rate or its long-poll slots; `retry_after` says when to come back."""


class ServerError(ApiError):
    """500/502: something went wrong on the server (quote `request_id` when you report it)."""


class ServiceUnavailable(ApiError):
    """503: a dependency of the API is down; the request was not accepted, and may be sent again."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    402: BudgetExceeded,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    422: ValidationError,
    429: RateLimited,
    500: ServerError,
    502: ServerError,
    503: ServiceUnavailable,
}


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` in seconds (the API sends delta-seconds); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_answer(status: int, body: bytes, headers: dict[str, str]) -> ApiError:
    """The typed exception for an error answer (any body: an API Gateway or proxy error is not ours)."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        text = body.decode(errors="replace").strip()[:200] or "no body"
        error = {"code": "http_error", "message": text}
    lowered = {name.lower(): value for name, value in headers.items()}
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(
        status,
        str(error.get("code") or "http_error"),
        str(error.get("message") or ""),
        request_id=error.get("requestId") or lowered.get("x-request-id"),
        details=error.get("details") if isinstance(error.get("details"), dict) else {},
        retry_after=retry_after_seconds(lowered.get("retry-after")),
    )
