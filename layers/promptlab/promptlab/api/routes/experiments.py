"""Experiment routes: start, read, list, results (JSONL/CSV), compare two variants, cancel, promote."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from promptlab.api.answers import doc, json_response
from promptlab.api.declared import route
from promptlab.api.openapi_docs import TEMPLATE_ID
from promptlab.api.resolver import current_principal
from promptlab.experiments import results, service
from promptlab.models.experiments import (
    Comparison,
    ExperimentCreate,
    ExperimentPage,
    ExperimentPublic,
    PromoteRequest,
    PromoteResult,
)
from promptlab.tenancy import audit, tenant_events

router = Router()  # type: ignore[no-untyped-call]

ExperimentId = Annotated[str, Path(min_length=1, max_length=64, description="An experiment id (`exp_…`).")]
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _tenant() -> str:
    return current_principal().tenant_id


@route(
    router,
    "POST",
    "/experiments",
    scope="experiments:run",
    event="CreateExperiment",
    summary="Start an experiment",
    description="Runs every variant (a template version or label, optionally another provider or model) over every row"
    " of a dataset version (or a `sample` of them) as ordinary jobs: cache, budgets, rate limits, retries and"
    " the economy lane apply. The whole worst case, judges included, is reserved up front (402 naming the"
    " shortfall). Rows are checked against each variant's variables first: each bad row is named with its"
    " field (422). Scorers: `exact`, `contains`, `regex`, `json_schema`, `length`, `judge` (a template of"
    ' yours answering `{"score": 0..1}`).',
    responses=doc(201, ExperimentPublic, "Started: every variant × row is a job", 400, 402, 404, 413, 415, 422),
    request={
        "datasetId": "ds_01K9Z4QA3B7C2D6E1F5G8H0J2K",
        "variants": [{"template": f"{TEMPLATE_ID}@production"}, {"template": f"{TEMPLATE_ID}@3"}],
        "scorers": [{"type": "contains"}, {"type": "judge", "template": "tpl_01K9Z4QB4C8D3E7F2G6H9J1K3L"}],
        "priority": "low",
    },
    errors={
        402: (
            "budget_exceeded",
            "the monthly budget of key 'ci' (5.00 USD) cannot cover this experiment's"
            " worst case of 6.20 USD: 0.40 spent and 0 reserved, 1.60 USD short",
        )
    },
    tags=["experiments"],
)
def create_experiment(body: ExperimentCreate) -> Response[str]:
    made = service.create_experiment(principal=current_principal(), request=body)
    return json_response(201, made, headers={"Location": f"/experiments/{made.id}"})


@route(
    router,
    "GET",
    "/experiments",
    scope="read",
    event="ListExperiments",
    summary="List experiments",
    description="This tenant's experiments, newest first.",
    responses=doc(200, ExperimentPage, "A page of experiments, newest first", 422),
    tags=["experiments"],
)
def list_experiments(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return json_response(200, service.list_experiments(tenant_id=_tenant(), limit=limit, cursor=cursor))


@route(
    router,
    "GET",
    "/experiments/<id>",
    scope="read",
    event="GetExperiment",
    summary="Read an experiment",
    description="Status, progress, and per variant: rows, completed, failed, cost (its own and its judges'), tokens,"
    " provider latency p50/p95, and each scorer's mean.",
    responses=doc(200, ExperimentPublic, "Progress and figures", 404, 422),
    tags=["experiments"],
)
def get_experiment(id: ExperimentId) -> Response[str]:
    return json_response(200, service.get_experiment(tenant_id=_tenant(), experiment_id=id))


@route(
    router,
    "GET",
    "/experiments/<id>/results",
    scope="read",
    event="ExperimentResults",
    summary="Download an experiment's results",
    description="Each row's input and expected joined with every variant's output, status, cost, latency and scores, as"
    " JSONL or CSV, `limit` rows a page; `X-Next-Cursor` names the next page.",
    responses=doc(200, None, "JSONL (a line per row) or CSV; `X-Next-Cursor` when more rows follow", 404, 422),
    tags=["experiments"],
)
def get_results(
    id: ExperimentId,
    format: Annotated[Literal["jsonl", "csv"], Query()] = "jsonl",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=5_000, description="Rows per page.")] = 2_000,
) -> Response[str]:
    text, next_cursor = results.export(tenant_id=_tenant(), experiment_id=id, fmt=format, cursor=cursor, rows=limit)
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else None
    return Response(status_code=200, content_type=CONTENT_TYPES[format], body=text, headers=headers)


@route(
    router,
    "GET",
    "/experiments/<id>/compare",
    scope="read",
    event="CompareExperiment",
    summary="Compare two variants",
    description="Per-row differences of variants `a` and `b` (largest first) and the deltas of score (b − a, with a"
    " 95 % paired bootstrap interval), cost and latency p50; `scorer` picks one scorer, else the mean of all.",
    responses=doc(200, Comparison, "Per-row differences and the aggregate deltas", 404, 422),
    tags=["experiments"],
)
def compare(
    id: ExperimentId,
    a: Annotated[int, Query(ge=0, le=9)] = 0,
    b: Annotated[int, Query(ge=0, le=9)] = 1,
    scorer: Annotated[str | None, Query(max_length=64, description="Default: the mean of every scorer.")] = None,
    limit: Annotated[int, Query(ge=0, le=1_000, description="Differing rows listed.")] = 50,
) -> Response[str]:
    found = results.compare(tenant_id=_tenant(), experiment_id=id, a=a, b=b, scorer=scorer, limit=limit)
    return json_response(200, found)


@route(
    router,
    "POST",
    "/experiments/<id>/cancel",
    scope="experiments:run",
    event="CancelExperiment",
    summary="Cancel an experiment",
    description="Jobs not yet started are cancelled and what the experiment held of the budget is released; calls under"
    " way finish and are billed. 409 when it already ended.",
    responses=doc(200, ExperimentPublic, "Cancelled: jobs not started are cancelled", 404, 409, 422),
    tags=["experiments"],
)
def cancel(id: ExperimentId) -> Response[str]:
    return json_response(200, service.cancel_experiment(tenant_id=_tenant(), experiment_id=id))


@route(
    router,
    "POST",
    "/experiments/<id>/promote",
    scope="labels:write",
    event="PromoteExperiment",
    summary="Promote a variant",
    description="Points a label (default `production`) of the variant's template at the variant's version; the label"
    " history records the experiment. 409 while the experiment runs.",
    responses=doc(200, PromoteResult, "The label now points at the variant's version", 400, 404, 409, 415, 422),
    request={"variant": 1, "label": "production"},
    tags=["experiments"],
)
def promote(id: ExperimentId, body: PromoteRequest) -> Response[str]:
    promoted = service.promote(principal=current_principal(), experiment_id=id, request=body)
    moved = {"templateId": promoted.template_id, "label": promoted.label}
    before, after = {**moved, "version": promoted.previous_version}, {**moved, "version": promoted.version}
    audit.record(current_principal(), "experiment.promoted", "experiment", id, before=before, after=after)
    tenant_events.publish(tenant_id=current_principal().tenant_id, event="template.label.moved", data={
        "templateId": promoted.template_id, "label": promoted.label, "fromVersion": promoted.previous_version,
        "toVersion": promoted.version, "experimentId": id})  # fmt: skip
    return json_response(200, promoted)
