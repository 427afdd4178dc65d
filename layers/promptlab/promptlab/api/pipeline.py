"""The request pipeline: what every request passes, once, before a route (or a fast path) answers it.

In order: the request id, authentication, the rate limit (which may also read a fast path's cache key in
its Redis round trip), and the checks Powertools lacks on the raw request (413, 415, 400, unsafe JSON).
Each refusal is a typed error; `api/errors.py` gives it its status.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promptlab.core.errors import (
    BadRequest,
    FieldProblem,
    PayloadTooLarge,
    PromptLabError,
    RateLimited,
    UnsupportedMediaType,
    ValidationFailed,
)
from promptlab.core.json_types import LambdaEvent
from promptlab.core.observability import count
from promptlab.core.settings import get_settings
from promptlab.core.validation import unsafe_json
from promptlab.infra import request_limits
from promptlab.tenancy import auth
from promptlab.tenancy.auth import Principal

MAX_BODY_BYTES = 1_048_576
FILE_UPLOAD_PATH = "/v1/files"
PUBLIC_PATHS = frozenset(
    {"/health", "/openapi.json", "/docs", "/docs/swagger-ui-bundle.min.js", "/docs/swagger-ui.min.css"}
)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Event = LambdaEvent


@dataclass
class Prefetch:
    """What a fast path prepared before the rate limiter, and the Redis value read in the limiter's trip."""

    key: str
    state: Any
    value: bytes | None = None
    done: bool = False


FastPrepare = Callable[[Event, Principal], Prefetch | None]


@dataclass(frozen=True)
class Admission:
    """A request let through: who it acts for, its rate-limit headers, and what a fast path prefetched."""

    principal: Principal
    limit_headers: dict[str, str] = field(default_factory=dict)
    prefetch: Prefetch | None = None


def header(event: Event, name: str) -> str | None:
    """A request header by lower-case name (API Gateway keeps the client's spelling)."""
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def request_id(event: Event) -> str | None:
    """API Gateway's id of the request (every answer carries it as `X-Request-Id`)."""
    value = (event.get("requestContext") or {}).get("requestId")
    return str(value) if value else None


def client_ip(event: Event) -> str:
    """The caller's address as API Gateway saw it (never a header the client could forge)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def file_limit() -> int:
    return get_settings().openai_file_max_bytes


def body_limit(path: str) -> int:
    """The largest request body a path takes: a file upload's form (the file, its parts and boundaries), else 1 MB."""
    return file_limit() + 64 * 1024 if path == FILE_UPLOAD_PATH else MAX_BODY_BYTES


def is_file_upload(event: Event, content_type: str | None) -> bool:
    """`POST /v1/files` with a multipart form: the one route whose body is not JSON."""
    return (
        event.get("path") == FILE_UPLOAD_PATH
        and event.get("httpMethod", "").upper() == "POST"
        and (content_type or "").lower().startswith("multipart/form-data")
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _refuse_unsafe(value: Any, name: str | None = None) -> None:
    unsafe = unsafe_json(value, name) if name is not None else unsafe_json(value)
    if unsafe is not None:
        field_name, problem = unsafe
        raise ValidationFailed(f"{field_name} {problem}", [FieldProblem(field=field_name, message=problem)])


def check_request(event: Event) -> Any:
    """Refuse a raw request that cannot reach a route: unsafe parameters, too large, not JSON, malformed.

    Returns the parsed JSON body (None without one)."""
    for params in (event.get("pathParameters"), event.get("queryStringParameters")):
        for name, value in (params or {}).items():
            _refuse_unsafe(value, name)
    body = event.get("body")
    if event.get("httpMethod", "").upper() not in _BODY_METHODS or not body:
        return None
    content_type = header(event, "content-type")
    inflation = 4 / 3 if event.get("isBase64Encoded") else 1
    if is_file_upload(event, content_type):  # the route reads the multipart body itself
        if len(body) > body_limit(FILE_UPLOAD_PATH) * inflation:
            raise PayloadTooLarge(f"a file sent in the request body is at most {file_limit():,} bytes")
        return None
    if len(body) > MAX_BODY_BYTES * inflation:
        raise PayloadTooLarge(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if content_type is not None and not _is_json(content_type):
        raise UnsupportedMediaType(f"send JSON (Content-Type: application/json), not {content_type!r}")
    try:
        text = base64.b64decode(body, validate=True).decode("utf-8") if event.get("isBase64Encoded") else body
        parsed = json.loads(text)
    except (ValueError, binascii.Error) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise BadRequest("the request body is nested too deeply") from exc
    _refuse_unsafe(parsed)
    return parsed


def _refuse(decision: request_limits.Decision) -> RateLimited:
    count("RateLimited")
    return RateLimited(
        f"rate limit of {decision.limit} requests reached; retry in {decision.reset_seconds} s",
        headers={**decision.headers(), "Retry-After": str(decision.reset_seconds)},
    )


def _charge_batch_items(principal: Principal, path: str, body: Any) -> request_limits.Decision | None:
    """A key's `--rpm` counts every item of `POST /generate/batch`, not the request once."""
    if path != "/generate/batch" or principal.key_id is None or not principal.rpm_limit:
        return None
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) <= 1:
        return None
    return request_limits.check_items(key_id=principal.key_id, key_limit=principal.rpm_limit, items=len(items) - 1)


def admit(event: Event, *, prepare: FastPrepare | None = None) -> Admission:
    """Authenticate, rate-limit and check one request; raises the typed error that refuses it."""
    path = event.get("path", "")
    ip = client_ip(event)
    principal = auth.ANONYMOUS if path in PUBLIC_PATHS else auth.authenticate(event.get("headers") or {}, client_ip=ip)
    prefetch = _prepared(prepare, event, principal)
    decision = request_limits.check(
        client_ip=ip,
        method=event.get("httpMethod", ""),
        path=path,
        key_id=principal.key_id,
        key_limit=principal.rpm_limit,
        also_get=prefetch.key if prefetch else None,
    )
    limit_headers = decision.headers() if decision else {}
    if decision is not None and not decision.admitted:
        raise _refuse(decision)
    if prefetch is not None and decision is not None:
        prefetch.value, prefetch.done = decision.prefetched, True
    try:
        body = check_request(event)
    except PromptLabError as exc:
        exc.headers = {**limit_headers, **exc.headers}
        raise
    items = _charge_batch_items(principal, path, body)
    if items is not None:
        if not items.admitted:
            raise _refuse(items)
        if decision is None or items.remaining < decision.remaining:
            limit_headers = items.headers()
    return Admission(principal=principal, limit_headers=limit_headers, prefetch=prefetch)


def _prepared(prepare: FastPrepare | None, event: Event, principal: Principal) -> Prefetch | None:
    """A fast path's preparation; anything unexpected just means no prefetch (the path runs normally)."""
    if prepare is None:
        return None
    try:
        return prepare(event, principal)
    except Exception:  # noqa: BLE001 - an optimisation must never turn into an error answer
        return None
