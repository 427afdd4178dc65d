"""The dataset use cases: read rows from JSON, JSONL or CSV, check every one, store them as a version."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import FieldProblem, NotFound, ValidationFailed
from promptlab.core.pagination import decode_cursor, decode_row_cursor, encode_cursor, encode_row_cursor
from promptlab.core.settings import get_settings
from promptlab.core.validation import validation_fields
from promptlab.db import datasets_repo
from promptlab.db.connection import Row, connection
from promptlab.db.datasets_repo import Dataset
from promptlab.infra import dataset_uploads
from promptlab.models.datasets import (
    MAX_ROWS,
    DatasetContent,
    DatasetCreate,
    DatasetPage,
    DatasetPublic,
    DatasetRow,
    DatasetRowPage,
    DatasetRowPublic,
    DatasetUpdate,
    DatasetUploadPublic,
    DatasetUploadRequest,
)

MAX_PROBLEMS = 20  # a file with a bad column names the first rows at fault, not every one


UPLOAD_SECONDS = 900
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def create_upload(*, tenant_id: str, request: DatasetUploadRequest) -> DatasetUploadPublic:
    """A presigned URL for one dataset file (larger than a request body may be), valid 15 minutes."""
    upload_id = ids.new_id("upl")
    content_type = CONTENT_TYPES[request.format]
    url = dataset_uploads.upload_url(
        key=dataset_uploads.key_of(tenant_id, upload_id), content_type=content_type, expires_seconds=UPLOAD_SECONDS
    )
    return DatasetUploadPublic(
        upload_id=upload_id, url=url, headers={"Content-Type": content_type},
        max_bytes=get_settings().dataset_upload_max_bytes, expires_at=utc_now() + timedelta(seconds=UPLOAD_SECONDS),
    )  # fmt: skip


def _uploaded_text(tenant_id: str, upload_id: str) -> str:
    data = dataset_uploads.read(
        key=dataset_uploads.key_of(tenant_id, upload_id), max_bytes=get_settings().dataset_upload_max_bytes
    )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed.single("upload", "the uploaded file is not UTF-8 text") from None


def _raw_rows(content: DatasetContent, tenant_id: str) -> tuple[list[Any], str]:
    """The rows before checking, and the field prefix their problems are named with."""
    if content.rows is not None:
        return list(content.rows), "rows"
    text = _uploaded_text(tenant_id, content.upload) if content.upload else content.content or ""
    if content.format == "jsonl":
        rows: list[Any] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValidationFailed.single("content", f"line {number} is not JSON: {exc.msg}") from None
        return rows, "content.lines"
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ValidationFailed.single("content", "the CSV has no header row")
    rows = []
    for record in reader:
        expected = record.pop("expected", None)
        extra = record.pop(None, None)
        if extra:
            raise ValidationFailed.single("content", f"row {reader.line_num - 1} has more cells than the header")
        rows.append({"input": {k: v for k, v in record.items() if k}, "expected": expected or None})
    return rows, "content.rows"


def check_rows(content: DatasetContent, tenant_id: str) -> tuple[list[Row], list[str]]:
    """Every row checked (each bad one named with its field), and the input fields they have."""
    raw, prefix = _raw_rows(content, tenant_id)
    if not raw:
        raise ValidationFailed.single("rows", "a dataset needs at least one row")
    if len(raw) > MAX_ROWS:
        raise ValidationFailed.single("rows", f"{len(raw):,} rows; a dataset holds {MAX_ROWS:,} at most")
    problems: list[FieldProblem] = []
    rows: list[Row] = []
    fields: set[str] = set()
    for index, item in enumerate(raw):
        try:
            row = DatasetRow.model_validate(item)
        except ValidationError as exc:
            for problem in validation_fields([dict(e) for e in exc.errors()]):
                problems.append(FieldProblem(field=f"{prefix}[{index}].{problem['field']}", message=problem["message"]))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        fields.update(row.input)
        rows.append(row.model_dump(exclude_none=True))
    if problems:
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
        raise ValidationFailed(f"{len(problems)} row problem(s): {summary}", problems[:MAX_PROBLEMS])
    return rows, sorted(fields)


def dataset_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id, name=dataset.name, description=dataset.description, version=dataset.current_version,
        row_count=dataset.row_count, fields=dataset.fields, created_at=dataset.created_at,
        updated_at=dataset.updated_at,
    )  # fmt: skip


def create_dataset(*, tenant_id: str, request: DatasetCreate) -> DatasetPublic:
    """A dataset at version 1 from its rows."""
    rows, fields = check_rows(request, tenant_id)
    with connection() as conn:
        made = datasets_repo.insert_dataset(
            conn, dataset_id=ids.new_id("ds"), tenant_id=tenant_id, name=request.name,
            description=request.description, rows=rows, fields=fields,
        )  # fmt: skip
    _forget_upload(tenant_id, request)
    return dataset_public(made)


def _forget_upload(tenant_id: str, request: DatasetContent) -> None:
    if request.upload:
        dataset_uploads.forget(key=dataset_uploads.key_of(tenant_id, request.upload))


def replace_rows(*, tenant_id: str, dataset_id: str, request: DatasetUpdate) -> DatasetPublic:
    """The dataset's next version, with these rows."""
    rows, fields = check_rows(request, tenant_id)
    with connection() as conn:
        updated = datasets_repo.new_version(
            conn, tenant_id=tenant_id, dataset_id=dataset_id, description=request.description, rows=rows,
            fields=fields,
        )  # fmt: skip
    if updated is None:
        raise NotFound(f"no dataset {dataset_id}", details={"datasetId": dataset_id})
    _forget_upload(tenant_id, request)
    return dataset_public(updated)


def get_dataset(*, tenant_id: str, dataset_id: str) -> DatasetPublic:
    with connection() as conn:
        found = datasets_repo.get_dataset(conn, tenant_id=tenant_id, dataset_id=dataset_id)
    if found is None:
        raise NotFound(f"no dataset {dataset_id}", details={"datasetId": dataset_id})
    return dataset_public(found)


def list_datasets(*, tenant_id: str, limit: int, cursor: str | None) -> DatasetPage:
    after = decode_cursor(cursor)
    with connection() as conn:
        found = datasets_repo.list_datasets(conn, tenant_id=tenant_id, limit=limit + 1, after_id=after)
    more = len(found) > limit
    found = found[:limit]
    return DatasetPage(
        items=[dataset_public(d) for d in found], next_cursor=encode_cursor(found[-1].id) if more else None
    )


def list_rows(
    *, tenant_id: str, dataset_id: str, version: int | None, limit: int, cursor: str | None
) -> DatasetRowPage:
    """A page of one version's rows (default: the current one), in upload order."""
    start = decode_row_cursor(cursor)
    with connection() as conn:
        dataset = datasets_repo.get_dataset(conn, tenant_id=tenant_id, dataset_id=dataset_id)
        if dataset is None:
            raise NotFound(f"no dataset {dataset_id}", details={"datasetId": dataset_id})
        chosen = version or dataset.current_version
        if not datasets_repo.version_exists(conn, dataset_id=dataset_id, version=chosen):
            raise NotFound(f"dataset {dataset_id} has no version {chosen}", details={"version": chosen})
        rows = datasets_repo.list_rows(conn, dataset_id=dataset_id, version=chosen, after=start, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DatasetRowPage(
        dataset_id=dataset_id,
        version=chosen,
        items=[DatasetRowPublic.model_validate(r) for r in rows],
        next_cursor=encode_row_cursor(rows[-1]["n"]) if more else None,
    )
