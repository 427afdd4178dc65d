"""One place that turns errors into HTTP answers of the shape in DESIGN.md §3."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from promptlab.core.errors import PromptLabError

STATUS_BY_CODE = {
    "bad_request": 400,
    "unauthorized": 401,
    "budget_exceeded": 402,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "precondition_failed": 412,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "validation_error": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "configuration_error": 500,
    "dependency_unavailable": 503,
}


def error_payload(*, code: str, message: str, request_id: str | None, details: dict[str, Any] | None) -> str:
    """The JSON text of an error body."""
    body = {"error": {"code": code, "message": message, "requestId": request_id, "details": details or {}}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


def error_response(
    *,
    code: str,
    message: str,
    request_id: str | None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    """An error answer with the status that belongs to its code."""
    all_headers = {"X-Request-Id": request_id or "", **(headers or {})}
    return Response(
        status_code=STATUS_BY_CODE.get(code, 500),
        content_type="application/json",
        body=error_payload(code=code, message=message, request_id=request_id, details=details),
        headers=all_headers,
    )


def from_domain_error(exc: PromptLabError, request_id: str | None) -> Response[str]:
    """The answer for a typed domain error."""
    return error_response(code=exc.code, message=exc.message, request_id=request_id, details=exc.details)
