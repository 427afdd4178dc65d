"""Experiment routes: start, read, list, results (JSONL/CSV), compare two variants, cancel, promote."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from promptlab.api.answers import doc, json_response
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

router = Router()  # type: ignore[no-untyped-call]

ExperimentId = Annotated[str, Path(min_length=1, max_length=64, description="An experiment id (`exp_…`).")]
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


def _tenant() -> str:
    return current_principal().tenant_id


@router.post(
    "/experiments",
    responses=doc(201, ExperimentPublic, "Started: every variant × row is a job", 400, 402, 404, 413, 415, 422),
    tags=["experiments"],
)
def create_experiment(body: ExperimentCreate) -> Response[str]:
    made = service.create_experiment(principal=current_principal(), request=body)
    return json_response(201, made, headers={"Location": f"/experiments/{made.id}"})


@router.get(
    "/experiments", responses=doc(200, ExperimentPage, "A page of experiments, newest first", 422), tags=["experiments"]
)
def list_experiments(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return json_response(200, service.list_experiments(tenant_id=_tenant(), limit=limit, cursor=cursor))


@router.get(
    "/experiments/<id>", responses=doc(200, ExperimentPublic, "Progress and figures", 404, 422), tags=["experiments"]
)
def get_experiment(id: ExperimentId) -> Response[str]:
    return json_response(200, service.get_experiment(tenant_id=_tenant(), experiment_id=id))


@router.get(
    "/experiments/<id>/results",
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


@router.get(
    "/experiments/<id>/compare",
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


@router.post(
    "/experiments/<id>/cancel",
    responses=doc(200, ExperimentPublic, "Cancelled: jobs not started are cancelled", 404, 409, 422),
    tags=["experiments"],
)
def cancel(id: ExperimentId) -> Response[str]:
    return json_response(200, service.cancel_experiment(tenant_id=_tenant(), experiment_id=id))


@router.post(
    "/experiments/<id>/promote",
    responses=doc(200, PromoteResult, "The label now points at the variant's version", 400, 404, 409, 415, 422),
    tags=["experiments"],
)
def promote(id: ExperimentId, body: PromoteRequest) -> Response[str]:
    return json_response(200, service.promote(principal=current_principal(), experiment_id=id, request=body))
