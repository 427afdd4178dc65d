"""Typed domain errors; the API maps each `code` to its HTTP status in one place."""

from __future__ import annotations

from dataclasses import dataclass

from promptlab.core.json_types import JsonObject

# The HTTP status of each error code: the one table the API answers by (`api/errors.py`) and clients read by.
STATUS_BY_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "budget_exceeded": 402,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "length_required": 411,
    "precondition_failed": 412,
    "payload_too_large": 413,
    "uri_too_long": 414,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "rate_limited": 429,
    "headers_too_large": 431,
    "internal_error": 500,
    "configuration_error": 500,
    "bad_gateway": 502,
    "dependency_unavailable": 503,
}


@dataclass(frozen=True)
class FieldProblem:
    """One bad field of a request: `input.topic`, `maxTokens`, …"""

    field: str
    message: str


class PromptLabError(Exception):
    """Base of every error PromptLab raises on purpose.

    `code` is machine-readable; the API maps it to an HTTP status in one table (`api/errors.py`).
    `headers` are sent with the error answer (`Retry-After`, `WWW-Authenticate`, rate-limit headers).
    """

    code = "internal_error"

    def __init__(
        self, message: str, *, details: JsonObject | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class BadRequest(PromptLabError):
    code = "bad_request"


class NotFound(PromptLabError):
    code = "not_found"


class Conflict(PromptLabError):
    code = "conflict"


class PreconditionFailed(PromptLabError):
    code = "precondition_failed"


class PayloadTooLarge(PromptLabError):
    code = "payload_too_large"


class UnsupportedMediaType(PromptLabError):
    code = "unsupported_media_type"


class DependencyUnavailable(PromptLabError):
    """A store PromptLab depends on (Postgres, Redis, SQS) does not answer: try again in a few seconds."""

    code = "dependency_unavailable"
    retry_after_seconds = 5  # a restart or failover is over in seconds; a client asks again after this long

    def __init__(
        self, message: str, *, details: JsonObject | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            message, details=details, headers={"Retry-After": str(self.retry_after_seconds), **(headers or {})}
        )


class PoisonMessage(Exception):
    """A queue message that can never be processed; SQS's maxReceiveCount moves it to a DLQ."""


class ConfigurationError(PromptLabError):
    """The deployment is misconfigured (missing queue URL, bad setting)."""

    code = "configuration_error"


class ValidationFailed(PromptLabError):
    """Input that parsed but breaks a rule; names every bad field."""

    code = "validation_error"

    def __init__(self, message: str, fields: list[FieldProblem]) -> None:
        super().__init__(message, details={"fields": [{"field": f.field, "message": f.message} for f in fields]})
        self.fields = fields

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        """A validation error about exactly one field."""
        return cls(message, [FieldProblem(field=field, message=message)])


class Unauthorized(PromptLabError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="promptlab"'})


class Forbidden(PromptLabError):
    """A known key without the scope the route needs."""

    code = "forbidden"


class RateLimited(PromptLabError):
    """Too many requests in the window; the headers say how many and when a slot frees."""

    code = "rate_limited"


class BudgetExceeded(PromptLabError):
    """The key's monthly budget cannot cover the job's worst-case cost."""

    code = "budget_exceeded"
