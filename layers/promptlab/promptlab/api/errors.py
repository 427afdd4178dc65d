"""The one exception → HTTP map: every status the API (and the local gateway) answers comes from here."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response

from promptlab.core.errors import STATUS_BY_CODE, PromptLabError
from promptlab.core.json_types import JsonObject, LambdaEvent

CODE_BY_STATUS = {status: code for code, status in reversed(STATUS_BY_CODE.items())}
INTERNAL_ERROR_MESSAGE = "something went wrong on our side; quote the request id when you report it"


def status_of(code: str) -> int:
    """The HTTP status of an error code (500 for a code this table does not know)."""
    return STATUS_BY_CODE.get(code, 500)


def error_payload(*, code: str, message: str, request_id: str | None, details: JsonObject | None) -> str:
    """The JSON text of an error body."""
    body = {"error": {"code": code, "message": message, "requestId": request_id, "details": details or {}}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)


def error_response(
    *,
    code: str,
    message: str,
    request_id: str | None,
    details: JsonObject | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    """An error answer from a route (Powertools), with the status that belongs to its code."""
    return Response(
        status_code=status_of(code),
        content_type="application/json",
        body=error_payload(code=code, message=message, request_id=request_id, details=details),
        headers=headers or {},
    )


def from_domain_error(exc: PromptLabError, request_id: str | None) -> Response[str]:
    """The answer for a typed domain error raised in a route."""
    return error_response(
        code=exc.code, message=exc.message, request_id=request_id, details=exc.details, headers=exc.headers
    )


def proxy_error(exc: PromptLabError, request_id: str | None) -> LambdaEvent:
    """The same answer as an API Gateway proxy response, for errors found before any route runs."""
    headers = {"Content-Type": "application/json", **exc.headers}
    return {
        "statusCode": status_of(exc.code),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": error_payload(code=exc.code, message=exc.message, request_id=request_id, details=exc.details),
        "isBase64Encoded": False,
    }
