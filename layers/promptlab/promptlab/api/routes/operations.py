"""Operations routes: usage and cost, health, and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from promptlab.api import health
from promptlab.api.answers import doc, json_response
from promptlab.api.declared import route
from promptlab.api.resolver import current_principal
from promptlab.models.health import HealthPublic
from promptlab.models.usage import UsageGroup, UsageReport
from promptlab.tenancy import usage

router = Router()  # type: ignore[no-untyped-call]


def _tenant() -> str:
    return current_principal().tenant_id


@route(
    router,
    "GET",
    "/usage",
    scope="read",
    event="Usage",
    summary="Usage and cost",
    description="Requests, cache hits, tokens, cost and savings of this tenant, grouped by day, provider, model or"
    " template"
    " (`from` inclusive, `to` exclusive; default: this month).",
    responses=doc(200, UsageReport, "Usage and cost per group, with totals", 422),
    tags=["usage"],
)
def get_usage(
    from_: Annotated[
        datetime | None, Query(alias="from", description="RFC 3339 or a date, inclusive; default: this month's start")
    ] = None,
    to: Annotated[datetime | None, Query(description="RFC 3339 or a date, exclusive; default: now")] = None,
    group_by: Annotated[UsageGroup, Query(alias="groupBy")] = "day",
) -> Response[str]:
    return json_response(200, usage.usage_report(tenant_id=_tenant(), start=from_, end=to, group_by=group_by))


@route(
    router,
    "GET",
    "/health",
    event="Health",
    summary="Health",
    description="Whether the database and Redis answer (200, or 503 naming the one that does not). No key needed.",
    responses=doc(200, HealthPublic, "Every dependency answers", 503),
    public=True,
    tags=["operations"],
)
def get_health() -> Response[str]:
    report = health.check_health()
    return json_response(200 if report.status == "ok" else 503, report)
