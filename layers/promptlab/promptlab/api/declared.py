"""Each route declared once: its path, the SAM event that routes it, and what the OpenAPI document says of it.

`route(...)` registers a Powertools route and records the declaration; the OpenAPI document (summary,
description, responses, examples) and the `Events` of `ApiFunction` in `template.yaml` are both made from
these records (`./dev routes` writes the events; a test fails when the template and the routes differ).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from promptlab.core.json_types import JsonObject
from promptlab.core.scopes import SCOPES

Handler = TypeVar("Handler", bound=Callable[..., Any])
_RULE_PARAMETER = re.compile(r"<(\w+)>")


@dataclass(frozen=True)
class Declared:
    """One route as declared: what routes it, and what its documentation says beyond the models."""

    method: str
    path: str  # the OpenAPI/API Gateway form: /jobs/{id}
    event: str  # the name of its Api event in template.yaml
    summary: str = ""
    description: str = ""
    request: JsonObject | None = None  # the request body's example
    errors: dict[int, tuple[str, str]] = field(default_factory=dict)  # status → (code, message) of the example
    also: tuple[int, ...] = ()  # error statuses the route answers that its `responses` do not list
    public: bool = False  # answered without a key
    documented: bool = True  # an operation of the OpenAPI document
    scope: str | None = None  # what a key needs to call it (`core.scopes`; `a|b`: either); public routes none


DECLARED: dict[tuple[str, str], Declared] = {}

# Answered before routing (CORS preflights), so declared here rather than on a router.
DECLARED[("OPTIONS", "/{proxy+}")] = Declared("OPTIONS", "/{proxy+}", "CorsPreflight", public=True, documented=False)


def openapi_path(rule: str) -> str:
    """`/jobs/<id>` (a Powertools rule) as `/jobs/{id}` (OpenAPI and API Gateway)."""
    return _RULE_PARAMETER.sub(r"{\1}", rule)


def route(
    router: Router | APIGatewayRestResolver,
    method: str,
    rule: str,
    *,
    event: str,
    summary: str = "",
    description: str = "",
    responses: dict[int, OpenAPIResponse] | None = None,
    tags: list[str] | None = None,
    request: JsonObject | None = None,
    errors: dict[int, tuple[str, str]] | None = None,
    also: tuple[int, ...] = (),
    public: bool = False,
    documented: bool = True,
    compress: bool = False,
    scope: str | None = None,
) -> Callable[[Handler], Handler]:
    """Register `method rule` on `router` and record its declaration (see the module's docstring)."""
    if (scope is None) != public or (scope is not None and not set(scope.split("|")) <= set(SCOPES)):
        raise ValueError(f"{method} {rule}: a keyed route names one of {SCOPES}, a public route none")
    declared = Declared(
        method,
        openapi_path(rule),
        event,
        summary,
        description,
        request,
        errors or {},
        also,
        public,
        documented,
        scope,
    )
    previous = DECLARED.get((declared.method, declared.path))
    if previous is not None and previous != declared:
        raise ValueError(f"{method} {rule} is declared twice")
    if any(d.event == event and d is not previous for d in DECLARED.values()):
        raise ValueError(f"the event name {event} is taken")
    DECLARED[(declared.method, declared.path)] = declared
    registered: Callable[[Handler], Handler] = router.route(
        rule,
        method,
        summary=summary or None,
        description=description or None,
        responses=responses,
        tags=tags,
        include_in_schema=documented,
        compress=compress,
    )
    return registered


def scope_of(method: str, path: str) -> str | None:
    """The scope a route needs (None: a public route, or no such route)."""
    declared = DECLARED.get((method.upper(), path))
    return declared.scope if declared is not None else None


def sam_events() -> dict[str, JsonObject]:
    """The `Events` of `ApiFunction`: an Api event per declared route, in declaration order."""
    return {
        declared.event: {
            "Type": "Api",
            "Properties": {"RestApiId": {"Ref": "PromptLabApi"}, "Path": declared.path, "Method": method.lower()},
        }
        for (method, _), declared in DECLARED.items()
    }
