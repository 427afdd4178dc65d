"""The REST resolver: the request pipeline, then a fast path or Powertools' routing, in one error shape.

Powertools keeps the current request on the class; Lambda runs one request per sandbox, but the local
runner serves many threads from one process, so the per-request state here is thread-local, and route
modules read it through `current_principal()` and `current_request_id()`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.api import openai_door, pipeline
from promptlab.api.cors import cors_headers, preflight
from promptlab.api.declared import scope_of
from promptlab.api.errors import INTERNAL_ERROR_MESSAGE, error_response, from_domain_error, proxy_error
from promptlab.api.openapi_docs import enrich
from promptlab.api.pipeline import Event, FastPrepare, Prefetch
from promptlab.core import scopes
from promptlab.core.errors import PromptLabError
from promptlab.core.json_types import JsonObject, LambdaEvent
from promptlab.core.observability import logger
from promptlab.core.validation import validation_fields
from promptlab.tenancy import auth
from promptlab.tenancy.auth import Principal

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

FastAnswer = Callable[[Event, Principal, Prefetch | None], LambdaEvent | None]

_request_state = threading.local()


def current_principal() -> Principal:
    """Who the current request acts for (set once the request is authenticated)."""
    principal: Principal = getattr(_request_state, "principal", auth.ANONYMOUS)
    return principal


def current_request_id() -> str | None:
    """The API Gateway request id of the current request."""
    request_id: str | None = getattr(_request_state, "request_id", None)
    return request_id


def _add_headers(answer: LambdaEvent, headers: dict[str, str]) -> LambdaEvent:
    answer.setdefault("multiValueHeaders", {}).update({name: [value] for name, value in headers.items()})
    return answer


class PromptLabResolver(APIGatewayRestResolver):
    """Answers every request in PromptLab's error shape, with `X-Request-Id`, after `pipeline.admit`.

    A route may also register a fast path: a function that answers the common, valid case of a request
    without Powertools' routing and validation, and returns None to let the full route answer everything
    else (errors included), so both paths give the same answers.
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
    def context(self) -> JsonObject:
        if not hasattr(_request_state, "context"):
            _request_state.context = {}
        routing: JsonObject = _request_state.context
        return routing

    @context.setter
    def context(self, value: JsonObject) -> None:
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

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        """Powertools' document of the routes, with each operation's summary, description and examples."""
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI  # on use: it is slow to import

        schema = super().get_openapi_schema(*args, **kwargs)
        document = enrich(schema.model_dump(mode="json", by_alias=True, exclude_none=True))
        return OpenAPI.model_validate(document)

    def resolve(self, event: LambdaEvent, context: LambdaContext) -> LambdaEvent:  # type: ignore[override]
        started = time.perf_counter()
        request_id = pipeline.request_id(event)
        _request_state.request_id = request_id
        _request_state.principal = auth.ANONYMOUS
        answer = preflight(event) or self._answer(event, context, request_id)
        # The access log's other half: API Gateway's line has no key (the key is checked here), this one has
        # its id — never the key — joined to it by the request id.
        logger.info(
            "request",
            request_id=request_id,
            method=event.get("httpMethod"),
            route=event.get("resource"),
            status=answer.get("statusCode"),
            key_id=_request_state.principal.key_id,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        if str(event.get("path", "")).startswith(openai_door.PREFIX):  # the OpenAI door speaks OpenAI's errors
            answer = openai_door.openai_error(answer)
        return _add_headers(answer, {"X-Request-Id": request_id or "", **cors_headers(event)})

    def _answer(self, event: Event, context: LambdaContext, request_id: str | None) -> LambdaEvent:
        fast, prepare = getattr(self, "fast_paths", {}).get(
            (event.get("httpMethod", ""), event.get("path")), (None, None)
        )
        try:
            admission = pipeline.admit(event, prepare=prepare)
        except PromptLabError as exc:
            return proxy_error(exc, request_id)
        _request_state.principal = admission.principal
        needed = scope_of(event.get("httpMethod", ""), str(event.get("resource") or ""))
        if needed is not None:
            try:
                scopes.require(admission.principal.scopes, needed)
            except PromptLabError as exc:
                return proxy_error(exc, request_id)
        try:
            quick = fast(event, admission.principal, admission.prefetch) if fast else None
        except Exception:  # the same answer the full route's last-resort handler gives
            logger.exception("unhandled error", request_id=request_id)
            quick = proxy_error(PromptLabError(INTERNAL_ERROR_MESSAGE), request_id)
        if quick is None:
            # Powertools assigns the request to its class attributes, which this class shadows thread-locally.
            self.current_event = APIGatewayProxyEvent(event)
            self.lambda_context = context
            quick = super().resolve(event, context)
        return _add_headers(quick, admission.limit_headers)


def register_error_handlers(app: PromptLabResolver) -> None:
    """Attach the exception→HTTP map to the resolver."""

    @app.exception_handler(PromptLabError)  # type: ignore[untyped-decorator]
    def _domain(exc: PromptLabError) -> Response[str]:
        return from_domain_error(exc, current_request_id())

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[str]:
        fields = validation_fields(list(exc.errors()))
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
        return error_response(
            code="validation_error",
            message=f"the request is not valid: {summary}",
            request_id=current_request_id(),
            details={"fields": fields},
        )

    @app.not_found
    def _unknown_route(_exc: NotFoundError) -> Response[str]:
        event = app.current_event
        return error_response(
            code="not_found", message=f"no route for {event.http_method} {event.path}", request_id=current_request_id()
        )

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _unexpected(_exc: Exception) -> Response[str]:
        logger.exception("unhandled error", request_id=current_request_id())
        return error_response(code="internal_error", message=INTERNAL_ERROR_MESSAGE, request_id=current_request_id())
