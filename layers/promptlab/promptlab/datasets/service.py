"""The dataset use cases: read rows from JSON, JSONL or CSV, check every one, store them as a version."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import FieldProblem, NotFound, ValidationFailed
from promptlab.core.observability import logger
from promptlab.core.pagination import decode_cursor, decode_row_cursor, encode_cursor, encode_row_cursor
from promptlab.core.settings import get_settings
from promptlab.core.validation import unsafe_json, validation_fields
from promptlab.db import datasets_repo
from promptlab.db.connection import Row, connection
from promptlab.db.datasets_repo import Dataset
from promptlab.infra import dataset_uploads, result_cache
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


MAX_LINE_CHARS = 1_000_000  # one row of a file; a longer line is refused before it is parsed


class _Rows:
    """A file's rows read one at a time (never the whole file in memory); a row that cannot be read is named
    `<prefix>[<index>]` (`content.lines[3]`, `content.rows[3]`)."""

    def __init__(self, lines: Iterator[str], *, prefix: str) -> None:
        self.lines, self.prefix = lines, prefix

    def __iter__(self) -> Iterator[Any]:
        return self._csv() if self.prefix.endswith(".rows") else self._jsonl()

    def _jsonl(self) -> Iterator[Any]:
        index = 0
        for number, line in enumerate(self.lines, start=1):
            if not line.strip():
                continue
            field = f"{self.prefix}[{index}]"
            if len(line) > MAX_LINE_CHARS:
                raise ValidationFailed.single(field, f"line {number} is longer than {MAX_LINE_CHARS:,} characters")
            try:
                yield json.loads(line, parse_constant=_no_constant)
            except json.JSONDecodeError as exc:
                raise ValidationFailed.single(field, f"line {number} is not JSON: {exc.msg}") from None
            except (ValueError, RecursionError):  # NaN or Infinity, an integer of thousands of digits, deep nesting
                raise ValidationFailed.single(
                    field, f"line {number} holds a number JSON cannot carry (NaN, Infinity, or thousands of "
                    "digits) or nests too deep"
                ) from None  # fmt: skip
            index += 1

    def _csv(self) -> Iterator[Any]:
        reader = csv.DictReader(self.lines)
        index = 0
        try:
            if not reader.fieldnames:
                raise ValidationFailed.single(self.prefix.removesuffix(".rows"), "the CSV has no header row")
            for record in reader:
                expected = record.pop("expected", None)
                if record.pop(None, None):
                    raise ValidationFailed.single(
                        f"{self.prefix}[{index}]", f"row {index + 1} has more cells than the header"
                    )
                yield {"input": {k: v for k, v in record.items() if k}, "expected": expected or None}
                index += 1
        except csv.Error as exc:  # a cell over the field limit (131,072 characters), a stray quote
            raise ValidationFailed.single(f"{self.prefix}[{index}]", f"row {index + 1}: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _lines(chunks: Iterator[bytes], field: str) -> Iterator[str]:
    """Text lines (line ends kept, as the csv module wants them) from UTF-8 chunks, decoded as they come."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    pending = ""
    try:
        for chunk in chunks:
            pending += decoder.decode(chunk)
            *complete, pending = pending.splitlines(keepends=True) or [""]
            if pending.endswith(("\r", "\n")):  # a line end that splitlines kept on the last piece
                complete, pending = [*complete, pending], ""
            yield from complete
            if len(pending) > MAX_LINE_CHARS:
                raise ValidationFailed.single(field, f"a line is longer than {MAX_LINE_CHARS:,} characters")
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValidationFailed.single(field, "the uploaded file is not UTF-8 text") from None
    if pending:
        yield pending


def _raw_rows(content: DatasetContent, tenant_id: str) -> tuple[Iterable[Any], str]:
    """The rows before checking (a file's are read as they are checked), and how a row's field is named."""
    if content.rows is not None:
        return content.rows, "rows"
    if content.upload:
        key = dataset_uploads.key_of(tenant_id, content.upload)
        chunks = dataset_uploads.chunks(key=key, max_bytes=get_settings().dataset_upload_max_bytes)
        lines: Iterator[str] = _lines(chunks, "upload")
    else:
        lines = iter((content.content or "").splitlines(keepends=True))
    prefix = "content.rows" if content.format == "csv" else "content.lines"
    return _Rows(lines, prefix=prefix), prefix


class CheckedRows:
    """The rows of a request, each checked as it is read: iterating yields the good ones (as they are stored)
    and ends by raising `ValidationFailed` naming every bad one (at most `MAX_PROBLEMS`), so the caller's
    transaction stores all of them or none. A file is refused as soon as it has more rows than a dataset
    holds, without reading on."""

    def __init__(self, content: DatasetContent, tenant_id: str) -> None:
        self.raw, self.prefix = _raw_rows(content, tenant_id)

    def __iter__(self) -> Iterator[Row]:
        problems: list[FieldProblem] = []
        seen = 0
        for index, item in enumerate(self.raw):
            seen += 1
            if seen > MAX_ROWS:
                raise ValidationFailed.single("rows", f"more than {MAX_ROWS:,} rows; a dataset holds {MAX_ROWS:,}")
            field = f"{self.prefix}[{index}]"
            try:
                row = DatasetRow.model_validate(item).model_dump(exclude_none=True)
            except ValidationError as exc:
                problems += [
                    FieldProblem(field=f"{field}.{problem['field']}", message=problem["message"])
                    for problem in validation_fields([dict(e) for e in exc.errors()])
                ]
            else:
                unsafe = unsafe_json(row, field)
                if unsafe is None:
                    yield row
                else:
                    problems.append(FieldProblem(field=unsafe[0], message=unsafe[1]))
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:3])
            raise ValidationFailed(f"{len(problems)} row problem(s): {summary}", problems[:MAX_PROBLEMS])
        if not seen:
            raise ValidationFailed.single("rows", "a dataset needs at least one row")


def dataset_public(dataset: Dataset) -> DatasetPublic:
    return DatasetPublic(
        id=dataset.id, name=dataset.name, description=dataset.description, version=dataset.current_version,
        row_count=dataset.row_count, fields=dataset.fields, created_at=dataset.created_at,
        updated_at=dataset.updated_at,
    )  # fmt: skip


def create_dataset(*, tenant_id: str, request: DatasetCreate) -> DatasetPublic:
    """A dataset at version 1 from its rows."""
    with connection() as conn:
        made = datasets_repo.insert_dataset(
            conn, dataset_id=ids.new_id("ds"), tenant_id=tenant_id, name=request.name,
            description=request.description, rows=CheckedRows(request, tenant_id), limits=_limits(),
        )  # fmt: skip
    _forget_upload(tenant_id, request)
    return dataset_public(made)


def _limits() -> datasets_repo.Limits:
    settings = get_settings()
    return datasets_repo.Limits(
        max_versions=settings.dataset_max_versions, tenant_max_bytes=settings.dataset_tenant_max_bytes
    )


def delete_dataset(*, tenant_id: str, dataset_id: str) -> None:
    """Delete a dataset: every version and row, and the experiments over it (their jobs' copies purged)."""
    with connection() as conn:
        purged = datasets_repo.delete_dataset(conn, tenant_id=tenant_id, dataset_id=dataset_id)
    if purged is None:
        raise NotFound(f"no dataset {dataset_id}", details={"datasetId": dataset_id})
    for hash_of_input in {row["input_hash"] for row in purged}:
        result_cache.forget(hash_of_input)
    logger.info("dataset deleted", dataset_id=dataset_id, jobs_purged=len(purged))


def _forget_upload(tenant_id: str, request: DatasetContent) -> None:
    if request.upload:
        dataset_uploads.forget(key=dataset_uploads.key_of(tenant_id, request.upload))


def replace_rows(*, tenant_id: str, dataset_id: str, request: DatasetUpdate) -> DatasetPublic:
    """The dataset's next version, with these rows."""
    with connection() as conn:
        updated = datasets_repo.new_version(
            conn, tenant_id=tenant_id, dataset_id=dataset_id, description=request.description,
            rows=CheckedRows(request, tenant_id), limits=_limits(),
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
