"""Every SQL statement about OpenAI-style files and batches (a batch's lines are jobs)."""

from __future__ import annotations

from collections.abc import Iterator

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection
from promptlab.models.jobs import Job
from promptlab.models.openai_batches import RequestCounts, StoredBatch, StoredFile


def insert_file(conn: Connection, stored: StoredFile) -> None:
    conn.execute(
        "INSERT INTO openai_files (id, tenant_id, purpose, filename, bytes, object_key, created_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (stored.id, stored.tenant_id, stored.purpose, stored.filename, stored.bytes, stored.object_key,
         stored.created_at, stored.expires_at),
    )  # fmt: skip


def tenant_input_bytes(conn: Connection, *, tenant_id: str) -> int:
    """What the tenant's batch input files hold (the output files are PromptLab's own)."""
    row = conn.execute(
        "SELECT coalesce(sum(bytes), 0) AS held FROM openai_files WHERE tenant_id = %s AND purpose = 'batch'",
        (tenant_id,),
    ).fetchone()
    return int(row["held"]) if row is not None else 0


def get_file(conn: Connection, *, tenant_id: str, file_id: str) -> StoredFile | None:
    row = conn.execute("SELECT * FROM openai_files WHERE id = %s AND tenant_id = %s", (file_id, tenant_id)).fetchone()
    return StoredFile(**row) if row is not None else None


def list_files(
    conn: Connection, *, tenant_id: str, purpose: str | None, after: str | None, limit: int, newest_first: bool
) -> list[StoredFile]:
    """A page of the tenant's files (ids sort by time), one more than `limit` to tell whether more follow."""
    order, beyond = ("DESC", "<") if newest_first else ("ASC", ">")
    rows = conn.execute(
        f"SELECT * FROM openai_files WHERE tenant_id = %s AND (%s::text IS NULL OR purpose = %s)"
        f" AND (%s::text IS NULL OR id {beyond} %s) ORDER BY id {order} LIMIT %s".encode(),
        (tenant_id, purpose, purpose, after, after, limit + 1),
    ).fetchall()
    return [StoredFile(**row) for row in rows]


def delete_file(conn: Connection, *, tenant_id: str, file_id: str) -> StoredFile | None:
    row = conn.execute(
        "DELETE FROM openai_files WHERE id = %s AND tenant_id = %s RETURNING *", (file_id, tenant_id)
    ).fetchone()
    return StoredFile(**row) if row is not None else None


def expired_files(conn: Connection, *, limit: int) -> list[StoredFile]:
    """Files past their retention, removed in the caller's transaction (their objects go after it commits)."""
    rows = conn.execute(
        "DELETE FROM openai_files WHERE id IN (SELECT id FROM openai_files WHERE expires_at <= now()"
        " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING *",
        (limit,),
    ).fetchall()
    return [StoredFile(**row) for row in rows]


def insert_batch(conn: Connection, batch: StoredBatch) -> None:
    conn.execute(
        "INSERT INTO openai_batches (id, tenant_id, api_key_id, input_file_id, endpoint, completion_window,"
        " metadata, status, errors, total, reserved_usd, budget_month, created_at, in_progress_at, expires_at,"
        " failed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (batch.id, batch.tenant_id, batch.api_key_id, batch.input_file_id, batch.endpoint, batch.completion_window,
         Jsonb(batch.metadata) if batch.metadata is not None else None, batch.status,
         Jsonb(batch.errors) if batch.errors is not None else None, batch.total, batch.reserved_usd,
         batch.budget_month, batch.created_at, batch.in_progress_at, batch.expires_at, batch.failed_at),
    )  # fmt: skip


def get_batch(conn: Connection, *, tenant_id: str | None, batch_id: str) -> StoredBatch | None:
    row = conn.execute(
        "SELECT * FROM openai_batches WHERE id = %s AND (%s::text IS NULL OR tenant_id = %s)",
        (batch_id, tenant_id, tenant_id),
    ).fetchone()
    return StoredBatch(**row) if row is not None else None


def list_batches(conn: Connection, *, tenant_id: str, after: str | None, limit: int) -> list[StoredBatch]:
    """Newest first (OpenAI's order), one more than `limit`."""
    rows = conn.execute(
        "SELECT * FROM openai_batches WHERE tenant_id = %s AND (%s::text IS NULL OR id < %s) ORDER BY id DESC LIMIT %s",
        (tenant_id, after, after, limit + 1),
    ).fetchall()
    return [StoredBatch(**row) for row in rows]


def counts(conn: Connection, *, batch_id: str, total: int) -> tuple[RequestCounts, int]:
    """(completed and failed lines, lines not ended yet)."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'completed') AS completed,"
        " count(*) FILTER (WHERE status IN ('failed', 'cancelled')) AS failed,"
        " count(*) FILTER (WHERE status IN ('queued', 'processing')) AS open"
        " FROM jobs WHERE openai_batch_id = %s",
        (batch_id,),
    ).fetchone()
    assert row is not None
    return RequestCounts(total=total, completed=row["completed"], failed=row["failed"]), row["open"]


def open_batches(conn: Connection, *, limit: int) -> list[StoredBatch]:
    """Batches that may have ended or expired since they were last looked at."""
    rows = conn.execute(
        "SELECT * FROM openai_batches WHERE status IN ('in_progress', 'cancelling', 'finalizing')"
        " ORDER BY created_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [StoredBatch(**row) for row in rows]


def move(conn: Connection, *, batch_id: str, before: tuple[str, ...], after: str, stamp: str) -> StoredBatch | None:
    """Change the batch's status from one of `before` (and set its `stamp` time); None when another did it."""
    assert stamp in {"completed_at", "expired_at", "cancelling_at", "cancelled_at", "failed_at"}
    row = conn.execute(
        f"UPDATE openai_batches SET status = %s, {stamp} = now() WHERE id = %s AND status = ANY(%s)"
        " RETURNING *".encode(),
        (after, batch_id, list(before)),
    ).fetchone()
    return StoredBatch(**row) if row is not None else None


def take_for_finalizing(conn: Connection, *, batch_id: str, stale_seconds: int) -> StoredBatch | None:
    """Make the batch `finalizing` for this caller alone: from `in_progress` or `cancelling`, or from a
    `finalizing` whose writer stopped more than `stale_seconds` ago; None when another has it."""
    row = conn.execute(
        "UPDATE openai_batches SET status = 'finalizing', finalizing_at = now() WHERE id = %s"
        " AND (status IN ('in_progress', 'cancelling')"
        " OR (status = 'finalizing' AND finalizing_at < now() - make_interval(secs => %s))) RETURNING *",
        (batch_id, stale_seconds),
    ).fetchone()
    return StoredBatch(**row) if row is not None else None


def set_result_files(conn: Connection, *, batch_id: str, output_file_id: str | None, error_file_id: str | None) -> None:
    conn.execute(
        "UPDATE openai_batches SET output_file_id = %s, error_file_id = %s WHERE id = %s",
        (output_file_id, error_file_id, batch_id),
    )


def cancel_waiting_lines(conn: Connection, *, batch_id: str) -> int:
    """Cancel the batch's lines no provider has taken yet (the budget trigger releases their reservations)."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'cancelled', completed_at = now(), updated_at = now()"
        " WHERE openai_batch_id = %s AND status = 'queued'",
        (batch_id,),
    )
    return cur.rowcount


def lines(conn: Connection, *, batch_id: str, chunk: int = 500) -> Iterator[Job]:
    """The batch's jobs in line order, `chunk` at a time (never all in memory)."""
    last = 0
    while True:
        rows = conn.execute(
            "SELECT * FROM jobs WHERE openai_batch_id = %s AND batch_line > %s ORDER BY batch_line LIMIT %s",
            (batch_id, last, chunk),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield Job.from_row(row)
        last = rows[-1]["batch_line"]
