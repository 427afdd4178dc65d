"""Every SQL statement about datasets: their versions and rows."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from promptlab.core.errors import Conflict, ValidationFailed
from promptlab.db.connection import Connection, Row
from promptlab.db.purge_repo import PURGE_COLUMNS, purge_kept_copies


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset with its current version's size and fields."""

    id: str
    tenant_id: str
    name: str
    description: str | None
    current_version: int
    row_count: int
    fields: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Dataset:
        return cls(**row)


_SELECT = (
    "SELECT d.id, d.tenant_id, d.name, d.description, d.current_version, v.row_count, v.fields, d.created_at,"
    " d.updated_at FROM datasets d JOIN dataset_versions v ON v.dataset_id = d.id AND v.version = d.current_version"
)


ROWS_PER_INSERT = 1_000  # rows are stored as they are read: memory holds one batch, not the file


@dataclass(frozen=True)
class Limits:
    """What a tenant's datasets may hold."""

    max_versions: int
    tenant_max_bytes: int


def _insert_rows(conn: Connection, *, tenant_id: str, dataset_id: str, version: int, rows: Iterable[Row],
                 limits: Limits) -> None:  # fmt: skip
    """Store a version's rows as they come (in the caller's transaction), then its size and input fields;
    `ValidationFailed` (undoing it all) past the dataset's versions or the tenant's bytes."""
    if version > limits.max_versions:
        raise ValidationFailed.single(
            "rows", f"the dataset has {limits.max_versions} versions, the most one keeps: delete it or make another"
        )
    # One writer of a tenant's datasets at a time, so two uploads cannot both fit under its limit.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('datasets:' || %s))", (tenant_id,))
    conn.execute(
        "INSERT INTO dataset_versions (dataset_id, version, row_count, fields) VALUES (%s, %s, 0, '[]')",
        (dataset_id, version),
    )
    count, size, fields, batch = 0, 0, set[str](), list[tuple[Any, ...]]()
    with conn.cursor() as cur:
        for row in itertools.chain(rows, [None]):  # None: the end, to store the last batch
            if row is not None:
                count += 1
                size += len(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
                fields.update(row["input"])
                batch.append(
                    (dataset_id, version, count, Jsonb(row["input"]), _json(row.get("expected")),
                     _json(row.get("metadata")))
                )  # fmt: skip
            if batch and (row is None or len(batch) == ROWS_PER_INSERT):
                cur.executemany(
                    "INSERT INTO dataset_rows (dataset_id, version, n, input, expected, metadata)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    batch,
                )
                batch = []
    conn.execute(
        "UPDATE dataset_versions SET row_count = %s, fields = %s, bytes = %s WHERE dataset_id = %s AND version = %s",
        (count, Jsonb(sorted(fields)), size, dataset_id, version),
    )
    held = conn.execute(
        "SELECT coalesce(sum(v.bytes), 0) AS n FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
        " WHERE d.tenant_id = %s",
        (tenant_id,),
    ).fetchone()
    if held is not None and held["n"] > limits.tenant_max_bytes:
        raise ValidationFailed.single(
            "rows",
            f"this version would bring your datasets to {held['n']:,} bytes; they hold {limits.tenant_max_bytes:,}"
            " at most: delete a dataset first",
        )


def _json(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def insert_dataset(
    conn: Connection, *, dataset_id: str, tenant_id: str, name: str, description: str | None, rows: Iterable[Row],
    limits: Limits,
) -> Dataset:  # fmt: skip
    """A new dataset at version 1; `Conflict` when the tenant has one of that name."""
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO datasets (id, tenant_id, name, description) VALUES (%s, %s, %s, %s)",
                (dataset_id, tenant_id, name, description),
            )
            _insert_rows(conn, tenant_id=tenant_id, dataset_id=dataset_id, version=1, rows=rows, limits=limits)
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict(f"a dataset named {name!r} exists", details={"name": name}) from exc
    found = get_dataset(conn, tenant_id=tenant_id, dataset_id=dataset_id)
    assert found is not None
    return found


def new_version(
    conn: Connection, *, tenant_id: str, dataset_id: str, description: str | None, rows: Iterable[Row], limits: Limits
) -> Dataset | None:
    """The dataset with its rows replaced as the next version; None when the tenant has no such dataset."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE datasets SET current_version = current_version + 1, updated_at = now(),"
            " description = coalesce(%s, description) WHERE id = %s AND tenant_id = %s RETURNING current_version",
            (description, dataset_id, tenant_id),
        ).fetchone()
        if row is None:
            return None
        version = int(row["current_version"])
        _insert_rows(conn, tenant_id=tenant_id, dataset_id=dataset_id, version=version, rows=rows, limits=limits)
    return get_dataset(conn, tenant_id=tenant_id, dataset_id=dataset_id)


def get_dataset(conn: Connection, *, tenant_id: str, dataset_id: str) -> Dataset | None:
    row = conn.execute(_SELECT + " WHERE d.id = %s AND d.tenant_id = %s", (dataset_id, tenant_id)).fetchone()
    return Dataset.from_row(row) if row is not None else None


def list_datasets(conn: Connection, *, tenant_id: str, limit: int, after_id: str | None) -> list[Dataset]:
    """Datasets newest first, `limit` after the cursor id."""
    sql = _SELECT + " WHERE d.tenant_id = %s"
    params: list[Any] = [tenant_id]
    if after_id:
        sql += " AND d.id < %s"
        params.append(after_id)
    sql += " ORDER BY d.id DESC LIMIT %s"
    params.append(limit)
    return [Dataset.from_row(r) for r in conn.execute(sql.encode(), params).fetchall()]


def version_exists(conn: Connection, *, dataset_id: str, version: int) -> bool:
    found = conn.execute(
        "SELECT 1 FROM dataset_versions WHERE dataset_id = %s AND version = %s", (dataset_id, version)
    ).fetchone()
    return found is not None


def list_rows(conn: Connection, *, dataset_id: str, version: int, after: int, limit: int) -> list[Row]:
    """Rows of one version in order, `limit` after row number `after`."""
    return conn.execute(
        "SELECT n, input, expected, metadata FROM dataset_rows WHERE dataset_id = %s AND version = %s AND n > %s"
        " ORDER BY n LIMIT %s",
        (dataset_id, version, after, limit),
    ).fetchall()


def delete_dataset(conn: Connection, *, tenant_id: str, dataset_id: str) -> list[Row] | None:
    """Delete a dataset with every version and row, and the experiments run over it (their jobs keep their
    accounting, their copies of the rows and answers purged). None when the tenant has no such dataset;
    `Conflict` while one of its experiments runs. Returns (id, input_hash) of the jobs purged."""
    with conn.transaction():
        found = conn.execute(
            "SELECT id FROM datasets WHERE id = %s AND tenant_id = %s FOR UPDATE", (dataset_id, tenant_id)
        ).fetchone()
        if found is None:
            return None
        running = conn.execute(
            "SELECT id FROM experiments WHERE dataset_id = %s AND status = 'running' LIMIT 1", (dataset_id,)
        ).fetchone()
        if running is not None:
            raise Conflict(
                f"experiment {running['id']} runs over this dataset: cancel it first",
                details={"experimentId": running["id"]},
            )
        purged = conn.execute(
            f"UPDATE jobs SET {PURGE_COLUMNS} WHERE tenant_id = %s AND experiment_id IN"
            " (SELECT id FROM experiments WHERE dataset_id = %s) AND purged_at IS NULL RETURNING id, input_hash",
            (tenant_id, dataset_id),
        ).fetchall()
        purge_kept_copies(conn, tenant_id=tenant_id, job_ids=[r["id"] for r in purged])
        conn.execute("DELETE FROM experiments WHERE dataset_id = %s", (dataset_id,))
        conn.execute("DELETE FROM datasets WHERE id = %s", (dataset_id,))
    return purged
