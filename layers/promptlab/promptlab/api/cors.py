"""CORS for browser clients: allowed origins from `PROMPTLAB_CORS_ORIGINS`, preflights answered here."""

from __future__ import annotations

from promptlab.core.json_types import LambdaEvent
from promptlab.core.settings import get_settings

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, X-API-Key, Content-Type, If-Match, Idempotency-Key, Cache-Control"
EXPOSED_HEADERS = (
    "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, ETag, Location,"
    " Idempotent-Replayed"
)
PREFLIGHT_MAX_AGE_SECONDS = 600


def _origin(event: LambdaEvent) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == "origin":
            return str(value)
    return None


def cors_headers(event: LambdaEvent) -> dict[str, str]:
    """The headers that let the calling page read the answer; none for an origin that is not allowed."""
    origin = _origin(event)
    if not origin or not get_settings().cors_allows(origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED_HEADERS, "Vary": "Origin"}


def preflight(event: LambdaEvent) -> LambdaEvent | None:
    """The answer to a browser's `OPTIONS` preflight (204; CORS headers only for an allowed origin)."""
    if event.get("httpMethod", "").upper() != "OPTIONS":
        return None
    headers: dict[str, str] = {}
    if cors_headers(event):
        headers = {
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
        }
    return {
        "statusCode": 204,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "body": "",
        "isBase64Encoded": False,
    }
