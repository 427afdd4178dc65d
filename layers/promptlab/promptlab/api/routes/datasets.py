"""Dataset routes: create (JSON rows, JSONL or CSV text), new versions, read, list, and page through rows."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from promptlab.api.answers import doc, json_response, no_content
from promptlab.api.resolver import current_principal
from promptlab.datasets import service
from promptlab.models.datasets import (
    DatasetCreate,
    DatasetPage,
    DatasetPublic,
    DatasetRowPage,
    DatasetUpdate,
    DatasetUploadPublic,
    DatasetUploadRequest,
)

router = Router()  # type: ignore[no-untyped-call]

DatasetId = Annotated[str, Path(min_length=1, max_length=64, description="A dataset id (`ds_…`).")]


def _tenant() -> str:
    return current_principal().tenant_id


@router.post(
    "/datasets", responses=doc(201, DatasetPublic, "Created at version 1", 400, 409, 413, 415, 422), tags=["datasets"]
)
def create_dataset(body: DatasetCreate) -> Response[str]:
    made = service.create_dataset(tenant_id=_tenant(), request=body)
    return json_response(201, made, headers={"Location": f"/datasets/{made.id}"})


@router.post(
    "/datasets/uploads",
    responses=doc(201, DatasetUploadPublic, "Where to PUT the file", 400, 415, 422, 503),
    tags=["datasets"],
)
def create_upload(body: DatasetUploadRequest) -> Response[str]:
    return json_response(201, service.create_upload(tenant_id=_tenant(), request=body))


@router.get("/datasets", responses=doc(200, DatasetPage, "A page of datasets, newest first", 422), tags=["datasets"])
def list_datasets(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return json_response(200, service.list_datasets(tenant_id=_tenant(), limit=limit, cursor=cursor))


@router.get("/datasets/<id>", responses=doc(200, DatasetPublic, "The dataset", 404, 422), tags=["datasets"])
def get_dataset(id: DatasetId) -> Response[str]:
    return json_response(200, service.get_dataset(tenant_id=_tenant(), dataset_id=id))


@router.put(
    "/datasets/<id>", responses=doc(200, DatasetPublic, "The new version", 400, 404, 413, 415, 422), tags=["datasets"]
)
def replace_rows(id: DatasetId, body: DatasetUpdate) -> Response[str]:
    return json_response(200, service.replace_rows(tenant_id=_tenant(), dataset_id=id, request=body))


@router.delete(
    "/datasets/<id>",
    responses=doc(204, None, "Deleted, with the experiments over it", 404, 409, 422),
    tags=["datasets"],
)
def delete_dataset(id: DatasetId) -> Response[str]:
    service.delete_dataset(tenant_id=_tenant(), dataset_id=id)
    return no_content()


@router.get("/datasets/<id>/rows", responses=doc(200, DatasetRowPage, "A page of rows", 404, 422), tags=["datasets"])
def list_rows(
    id: DatasetId,
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="Default: the current one.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    page = service.list_rows(tenant_id=_tenant(), dataset_id=id, version=version, limit=limit, cursor=cursor)
    return json_response(200, page)
