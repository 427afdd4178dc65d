"""The REST resolver: Powertools plus the checks it lacks (415, 400, 413) and our error shape."""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.api.cors import cors_headers, preflight
from promptlab.api.errors import error_payload, error_response, from_domain_error
from promptlab.core.errors import PromptLabError, Unauthorized
from promptlab.core.observability import count, logger
from promptlab.core.validation import unsafe_json, validation_fields
from promptlab.infra import request_limits
from promptlab.tenancy import auth
from promptlab.tenancy.auth import Principal

MAX_BODY_BYTES = 1_048_576
PUBLIC_PATHS = frozenset({"/health", "/openapi.json"})
INTERNAL_ERROR_MESSAGE = "something went wrong on our side; quote the request id when you report it"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _request_id(event: dict[str, Any]) -> str | None:
    context = event.get("requestContext") or {}
    value = context.get("requestId")
    return str(value) if value else None


Problem = tuple[int, str, str] | tuple[int, str, str, dict[str, Any]]


def preflight_error(event: dict[str, Any]) -> Problem | None:
    """(status, code, message[, details]) when the raw request cannot reach a route handler."""
    for params in (event.get("pathParameters"), event.get("queryStringParameters")):
        for name, value in (params or {}).items():
            unsafe = unsafe_json(value, name)
            if unsafe is not None:
                field, problem = unsafe
                return 422, "validation_error", f"{field} {problem}", {"fields": [{"field": field, "message": problem}]}
    if event.get("httpMethod", "").upper() not in _BODY_METHODS:
        return None
    body = event.get("body")
    if not body:
        return None
    if len(body) > MAX_BODY_BYTES * (4 / 3 if event.get("isBase64Encoded") else 1):
        return 413, "payload_too_large", f"the request body is larger than {MAX_BODY_BYTES} bytes"
    content_type = _header(event, "content-type")
    if content_type is not None and not _is_json(content_type):
        return (
            415,
            "unsupported_media_type",
            f"send JSON (Content-Type: application/json), not {content_type!r}",
        )
    try:
        text = base64.b64decode(body, validate=True).decode("utf-8") if event.get("isBase64Encoded") else body
        parsed = json.loads(text)
    except (ValueError, binascii.Error) as exc:
        return 400, "bad_request", f"the request body is not valid JSON: {exc}"
    except RecursionError:
        return 400, "bad_request", "the request body is nested too deeply"
    unsafe = unsafe_json(parsed)
    if unsafe is not None:
        field, problem = unsafe
        return 422, "validation_error", f"{field} {problem}", {"fields": [{"field": field, "message": problem}]}
    return None


def _client_ip(event: dict[str, Any]) -> str:
    """The caller's address as API Gateway saw it (never a header the client could forge)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    return str(identity.get("sourceIp") or "unknown")


def _raw_error(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An error answered before routing, in the same shape as every other error."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "X-Request-Id": request_id or "", **(headers or {})},
        "multiValueHeaders": {},
        "body": error_payload(code=code, message=message, request_id=request_id, details=details or {}),
        "isBase64Encoded": False,
    }


@dataclass
class Prefetch:
    """What a fast path prepared before the rate limiter, and the Redis value read in the limiter's trip."""

    key: str
    state: Any
    value: bytes | None = None
    done: bool = False


FastAnswer = Callable[[dict[str, Any], str | None, Prefetch | None], dict[str, Any] | None]
FastPrepare = Callable[[dict[str, Any]], Prefetch | None]


_request_state = threading.local()


def _prepared(prepare: FastPrepare | None, event: dict[str, Any]) -> Prefetch | None:
    """A fast path's preparation; anything unexpected just means no prefetch (the path runs normally)."""
    if prepare is None:
        return None
    try:
        return prepare(event)
    except Exception:  # noqa: BLE001 - an optimisation must never turn into an error answer
        return None


class PromptLabResolver(APIGatewayRestResolver):
    """Answers every request in PromptLab's error shape, with `X-Request-Id`.

    A route may also register a fast path: a function that answers the common, valid case of a
    request without Powertools' routing and validation, and returns None to let the full path answer
    everything else (errors included), so both paths give the same answers.

    Powertools keeps the current request on the class; Lambda runs one request per sandbox, but the
    local runner serves many threads from one process, so the per-request state here is thread-local.
    """

    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        event: BaseProxyEvent = _request_state.event
        return event

    @current_event.setter
    def current_event(self, value: BaseProxyEvent) -> None:
        _request_state.event = value

    @property
    def lambda_context(self) -> LambdaContext:
        context: LambdaContext = _request_state.lambda_context
        return context

    @lambda_context.setter
    def lambda_context(self, value: LambdaContext) -> None:
        _request_state.lambda_context = value

    @property
    def context(self) -> dict[str, Any]:
        if not hasattr(_request_state, "context"):
            _request_state.context = {}
        routing: dict[str, Any] = _request_state.context
        return routing

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        _request_state.context = value

    fast_paths: dict[tuple[str, str], tuple[FastAnswer, FastPrepare | None]]

    def fast_path(
        self, method: str, path: str, *, prepare: FastPrepare | None = None
    ) -> Callable[[FastAnswer], FastAnswer]:
        """Register a fast path for one method and exact path.

        `prepare` (optional, no I/O but in-process caches) may name a Redis key to read in the rate
        limiter's round trip; its result reaches the fast path as a `Prefetch`.
        """

        def register(function: FastAnswer) -> FastAnswer:
            if not hasattr(self, "fast_paths"):
                self.fast_paths = {}
            self.fast_paths[(method, path)] = (function, prepare)
            return function

        return register

    @property
    def principal(self) -> Principal:
        """Who the current request acts for (set once the request is authenticated)."""
        principal: Principal = getattr(_request_state, "principal", auth.ANONYMOUS)
        return principal

    def resolve(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # type: ignore[override]
        request_id = _request_id(event)
        answer = preflight(event, request_id) or self._answer(event, context, request_id)
        extra = cors_headers(event)
        if extra:
            answer.setdefault("multiValueHeaders", {}).update({k: [v] for k, v in extra.items()})
        return answer

    def _answer(self, event: dict[str, Any], context: LambdaContext, request_id: str | None) -> dict[str, Any]:
        path = event.get("path", "")
        _request_state.principal = auth.ANONYMOUS
        try:
            if path not in PUBLIC_PATHS:
                _request_state.principal = auth.authenticate(event.get("headers") or {})
            principal = self.principal
            fast, prepare = getattr(self, "fast_paths", {}).get((event.get("httpMethod", ""), path), (None, None))
            prefetch = _prepared(prepare, event)
            decision = request_limits.check(
                client_ip=_client_ip(event),
                method=event.get("httpMethod", ""),
                path=path,
                key_id=principal.key_id,
                key_limit=principal.rpm_limit,
                also_get=prefetch.key if prefetch else None,
            )
            if prefetch is not None and decision is not None:
                prefetch.value, prefetch.done = decision.prefetched, True
        except Unauthorized as exc:
            return _raw_error(401, exc.code, exc.message, request_id, {"WWW-Authenticate": 'Bearer realm="promptlab"'})
        except PromptLabError as exc:
            return _raw_error(503, exc.code, exc.message, request_id)
        limit_headers = decision.headers() if decision else {}
        if decision is not None and not decision.admitted:
            count("RateLimited")
            message = f"rate limit of {decision.limit} requests reached; retry in {decision.reset_seconds} s"
            headers = {**limit_headers, "Retry-After": str(decision.reset_seconds)}
            return _raw_error(429, "rate_limited", message, request_id, headers)
        problem = preflight_error(event)
        if problem is not None:
            status, code, message, *details = problem
            return _raw_error(status, code, message, request_id, limit_headers, details[0] if details else None)
        try:
            quick: dict[str, Any] | None = fast(event, request_id, prefetch) if fast else None
        except Exception:  # the same answer the full route's last-resort handler gives
            logger.exception("unhandled error", request_id=request_id)
            return _raw_error(500, "internal_error", INTERNAL_ERROR_MESSAGE, request_id, limit_headers)
        if quick is not None:
            quick["multiValueHeaders"].update({k: [v] for k, v in limit_headers.items()})
            return quick
        self.current_event = self._to_proxy_event(event)
        self.lambda_context = context
        try:
            answer: dict[str, Any] = self._build_response(self._resolve())
        finally:
            self.clear_context()  # type: ignore[no-untyped-call]
        if limit_headers:
            answer.setdefault("multiValueHeaders", {}).update({k: [v] for k, v in limit_headers.items()})
        return answer

    @property
    def request_id(self) -> str | None:
        """The API Gateway request id of the current request."""
        return _request_id(self.current_event.raw_event)


def register_error_handlers(app: PromptLabResolver) -> None:
    """Attach the exception→HTTP map to the resolver."""

    @app.exception_handler(PromptLabError)  # type: ignore[untyped-decorator]
    def _domain(exc: PromptLabError) -> Response[str]:
        return from_domain_error(exc, app.request_id)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[str]:
        fields = validation_fields(list(exc.errors()))
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(
            code="validation_error",
            message=f"the request is not valid: {summary}",
            request_id=app.request_id,
            details={"fields": fields},
        )

    @app.not_found
    def _unknown_route(_exc: NotFoundError) -> Response[str]:
        event = app.current_event
        return error_response(
            code="not_found",
            message=f"no route for {event.http_method} {event.path}",
            request_id=app.request_id,
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(_exc: Exception) -> Response[str]:
        logger.exception("unhandled error", request_id=app.request_id)
        return error_response(code="internal_error", message=INTERNAL_ERROR_MESSAGE, request_id=app.request_id)
