"""Dataset routes: create (JSON rows, JSONL or CSV text), new versions, read, list, and page through rows."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from promptlab.api.answers import doc, json_response, no_content
from promptlab.api.declared import route
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
from promptlab.tenancy import audit

router = Router()  # type: ignore[no-untyped-call]

DatasetId = Annotated[str, Path(min_length=1, max_length=64, description="A dataset id (`ds_…`).")]


def _tenant() -> str:
    return current_principal().tenant_id


@route(
    router,
    "POST",
    "/datasets",
    scope="datasets:write",
    event="CreateDataset",
    summary="Create a dataset",
    description="Rows of `{input, expected?, metadata?}` to run template versions over (version 1): as JSON `rows`,"
    " or a"
    " JSONL or CSV file's text in `content` with its `format` (CSV: a header row; its columns are input fields,"
    " an `expected` column the expected answer). Each bad row is named with its field; names are unique per"
    " tenant (409).",
    responses=doc(201, DatasetPublic, "Created at version 1", 400, 409, 413, 415, 422),
    request={
        "name": "support-tickets",
        "rows": [
            {"input": {"ticket": "My invoice is wrong"}, "expected": "billing", "metadata": {"source": "zendesk"}},
            {"input": {"ticket": "The app crashes on login"}, "expected": "bug"},
        ],
    },
    errors={409: ("conflict", "a dataset named 'support-tickets' exists")},
    tags=["datasets"],
)
def create_dataset(body: DatasetCreate) -> Response[str]:
    made = service.create_dataset(tenant_id=_tenant(), request=body)
    return json_response(201, made, headers={"Location": f"/datasets/{made.id}"})


@route(
    router,
    "POST",
    "/datasets/uploads",
    scope="datasets:write",
    event="CreateDatasetUpload",
    summary="Upload a large dataset file",
    description="A presigned URL (15 minutes) to PUT one JSONL or CSV file of up to 100 MB with the given"
    " `Content-Type`;"
    ' then `POST /datasets` (or `PUT /datasets/{id}`) with `{"upload": uploadId, "format": …}` reads it'
    " once, checks every row and deletes the file. For files larger than a request body (1 MB locally, 10 MB"
    " behind API Gateway).",
    responses=doc(201, DatasetUploadPublic, "Where to PUT the file", 400, 415, 422, 503),
    request={"format": "jsonl"},
    tags=["datasets"],
)
def create_upload(body: DatasetUploadRequest) -> Response[str]:
    return json_response(201, service.create_upload(tenant_id=_tenant(), request=body))


@route(
    router,
    "GET",
    "/datasets",
    scope="read",
    event="ListDatasets",
    summary="List datasets",
    description="This tenant's datasets, newest first, a page at a time (`cursor` from `nextCursor`).",
    responses=doc(200, DatasetPage, "A page of datasets, newest first", 422),
    tags=["datasets"],
)
def list_datasets(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return json_response(200, service.list_datasets(tenant_id=_tenant(), limit=limit, cursor=cursor))


@route(
    router,
    "GET",
    "/datasets/<id>",
    scope="read",
    event="GetDataset",
    summary="Read a dataset",
    description="The dataset at its current version: row count and the input fields its rows have.",
    responses=doc(200, DatasetPublic, "The dataset", 404, 422),
    tags=["datasets"],
)
def get_dataset(id: DatasetId) -> Response[str]:
    return json_response(200, service.get_dataset(tenant_id=_tenant(), dataset_id=id))


@route(
    router,
    "PUT",
    "/datasets/<id>",
    scope="datasets:write",
    event="ReplaceDatasetRows",
    summary="Replace a dataset's rows",
    description="The rows (JSON, JSONL or CSV, as at creation) become the next version; earlier versions stay"
    " readable.",
    responses=doc(200, DatasetPublic, "The new version", 400, 404, 413, 415, 422),
    request={"format": "csv", "content": "ticket,expected\nMy invoice is wrong,billing\nThe app crashes,bug\n"},
    tags=["datasets"],
)
def replace_rows(id: DatasetId, body: DatasetUpdate) -> Response[str]:
    return json_response(200, service.replace_rows(tenant_id=_tenant(), dataset_id=id, request=body))


@route(
    router,
    "DELETE",
    "/datasets/<id>",
    scope="datasets:write",
    event="DeleteDataset",
    summary="Delete a dataset",
    description="Deletes every version and row, and the experiments run over it (their jobs keep their cost; the copies"
    " of rows and answers they hold are purged). While one of its experiments runs: 409, cancel it first.",
    responses=doc(204, None, "Deleted, with the experiments over it", 404, 409, 422),
    tags=["datasets"],
)
def delete_dataset(id: DatasetId) -> Response[str]:
    service.delete_dataset(tenant_id=_tenant(), dataset_id=id)
    audit.record(current_principal(), "dataset.deleted", "dataset", id)
    return no_content()


@route(
    router,
    "GET",
    "/datasets/<id>/rows",
    scope="read",
    event="ListDatasetRows",
    summary="Read a dataset's rows",
    description="A page of one version's rows (default: the current one) in upload order, each with its number `n`.",
    responses=doc(200, DatasetRowPage, "A page of rows", 404, 422),
    tags=["datasets"],
)
def list_rows(
    id: DatasetId,
    version: Annotated[int | None, Query(ge=1, le=1_000_000, description="Default: the current one.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    page = service.list_rows(tenant_id=_tenant(), dataset_id=id, version=version, limit=limit, cursor=cursor)
    return json_response(200, page)
