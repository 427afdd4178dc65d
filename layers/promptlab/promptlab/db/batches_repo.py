"""Every SQL statement about the economy lane: pending jobs, provider batches, and settling their results."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection, Row
from promptlab.db.jobs_repo import ANSWER_COLUMNS, answer_values
from promptlab.models.batches import ProviderBatch
from promptlab.models.jobs import Answer, Job


def pending_jobs(conn: Connection, *, limit: int) -> list[Job]:
    """Economy jobs waiting for a batch, oldest first, locked for this transaction (others skip them)."""
    rows = conn.execute(
        "SELECT * FROM jobs WHERE lane = 'economy' AND status = 'queued' AND batch_id IS NULL"
        " AND expires_at > now() ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    return [Job.from_row(row) for row in rows]


def pending_to_standard_lane(conn: Connection, *, job_ids: list[str], warning: str) -> list[str]:
    """Waiting economy jobs moved to the normal lane (with a warning saying why); the ids moved."""
    rows = conn.execute(
        "UPDATE jobs SET lane = 'standard', warnings = coalesce(warnings, '[]'::jsonb) || %s, enqueued_at = NULL,"
        " updated_at = now() WHERE id = ANY(%s) AND lane = 'economy' AND status = 'queued' AND batch_id IS NULL"
        " RETURNING id",
        (Jsonb([warning]), job_ids),
    ).fetchall()
    return [str(row["id"]) for row in rows]


def insert_batch(conn: Connection, *, batch_id: str, tenant_id: str, provider: str, model: str, size: int) -> None:
    """A new batch, `submitting` until the provider has it."""
    conn.execute(
        "INSERT INTO provider_batches (id, tenant_id, provider, model, status, request_count)"
        " VALUES (%s, %s, %s, %s, 'submitting', %s)",
        (batch_id, tenant_id, provider, model, size),
    )


def assign_jobs(conn: Connection, *, batch_id: str, job_ids: list[str]) -> int:
    """Hand waiting jobs to a batch: each is `processing` with one more attempt."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'processing', batch_id = %s, attempts = attempts + 1,"
        " started_at = coalesce(started_at, now()), updated_at = now()"
        " WHERE id = ANY(%s) AND status = 'queued' AND lane = 'economy' AND batch_id IS NULL",
        (batch_id, job_ids),
    )
    return cur.rowcount


def batch_submitted(conn: Connection, *, batch_id: str, provider_batch_id: str, expires_at: Any) -> None:
    conn.execute(
        "UPDATE provider_batches SET provider_batch_id = %s, status = 'in_progress', expires_at = %s WHERE id = %s",
        (provider_batch_id, expires_at, batch_id),
    )


def batch_failed(conn: Connection, *, batch_id: str, error: str) -> None:
    conn.execute(
        "UPDATE provider_batches SET status = 'failed', error = %s, ended_at = now() WHERE id = %s",
        (error, batch_id),
    )


def release_jobs(conn: Connection, *, batch_id: str) -> list[str]:
    """A batch that never reached the provider: its jobs wait again (the attempt is given back)."""
    rows = conn.execute(
        "UPDATE jobs SET status = 'queued', batch_id = NULL, attempts = attempts - 1, updated_at = now()"
        " WHERE batch_id = %s AND status = 'processing' RETURNING id",
        (batch_id,),
    ).fetchall()
    return [r["id"] for r in rows]


def open_batches(conn: Connection, *, limit: int) -> list[ProviderBatch]:
    rows = conn.execute(
        "SELECT * FROM provider_batches WHERE status IN ('submitting', 'in_progress') ORDER BY created_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [ProviderBatch.from_row(row) for row in rows]


def update_counts(conn: Connection, *, batch_id: str, counts: Row, ended: bool) -> None:
    conn.execute(
        "UPDATE provider_batches SET succeeded = %(succeeded)s, errored = %(errored)s, expired = %(expired)s,"
        " canceled = %(canceled)s, status = CASE WHEN %(ended)s THEN 'ended' ELSE status END,"
        " ended_at = CASE WHEN %(ended)s THEN now() ELSE ended_at END WHERE id = %(id)s",
        {**counts, "ended": ended, "id": batch_id},
    )


def job_in_batch(conn: Connection, *, job_id: str, batch_id: str) -> Job | None:
    """The job if this batch still holds it (`processing` with this batch id), else None."""
    row = conn.execute(
        "SELECT * FROM jobs WHERE id = %s AND batch_id = %s AND status = 'processing'", (job_id, batch_id)
    ).fetchone()
    return Job.from_row(row) if row is not None else None


def held_jobs(conn: Connection, *, batch_id: str) -> list[str]:
    """Jobs a batch still holds (no result has settled them)."""
    rows = conn.execute("SELECT id FROM jobs WHERE batch_id = %s AND status = 'processing'", (batch_id,)).fetchall()
    return [r["id"] for r in rows]


def complete(
    conn: Connection, *, job_id: str, batch_id: str, outcome: Answer, saved_cost_usd: Decimal | None
) -> Job | None:
    """Write a batch answer once: only while the batch still holds the job."""
    row = conn.execute(
        f"UPDATE jobs SET {ANSWER_COLUMNS}, saved_cost_usd = %(saved_cost_usd)s"
        " WHERE id = %(job_id)s AND batch_id = %(batch_id)s AND status = 'processing' RETURNING *".encode(),
        {**answer_values(outcome), "saved_cost_usd": saved_cost_usd, "job_id": job_id, "batch_id": batch_id},
    ).fetchone()
    return Job.from_row(row) if row is not None else None


def spend_on_cancelled(conn: Connection, *, job_id: str, batch_id: str, outcome: Answer) -> bool:
    """A job cancelled while its batch ran: the answer is discarded, what it cost is kept (once)."""
    cur = conn.execute(
        "UPDATE jobs SET input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s,"
        " total_tokens = %(total_tokens)s, estimated_cost_usd = %(estimated_cost_usd)s, updated_at = now()"
        " WHERE id = %(job_id)s AND batch_id = %(batch_id)s AND status = 'cancelled' AND total_tokens IS NULL",
        {**answer_values(outcome), "job_id": job_id, "batch_id": batch_id},
    )
    return cur.rowcount == 1


def to_standard_lane(conn: Connection, *, job_id: str, batch_id: str, error: Row) -> bool:
    """A retryable batch error: the job goes to the normal lane (its message is sent next)."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', lane = 'standard', batch_id = NULL, error = %s, enqueued_at = NULL,"
        " updated_at = now() WHERE id = %s AND batch_id = %s AND status = 'processing'",
        (Jsonb(error), job_id, batch_id),
    )
    return cur.rowcount == 1


def back_to_waiting(conn: Connection, *, job_id: str, batch_id: str, error: Row) -> bool:
    """An expired or canceled batch request: the job waits for the next batch (once)."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', batch_id = NULL, batch_requeues = batch_requeues + 1, error = %s,"
        " updated_at = now() WHERE id = %s AND batch_id = %s AND status = 'processing'",
        (Jsonb(error), job_id, batch_id),
    )
    return cur.rowcount == 1


def fail(conn: Connection, *, job_id: str, batch_id: str, error: Row) -> bool:
    cur = conn.execute(
        "UPDATE jobs SET status = 'failed', error = %s, completed_at = now(), updated_at = now()"
        " WHERE id = %s AND batch_id = %s AND status = 'processing'",
        (Jsonb(error), job_id, batch_id),
    )
    return cur.rowcount == 1


def list_batches(conn: Connection, *, tenant_id: str, limit: int, after_id: str | None) -> list[ProviderBatch]:
    sql = "SELECT * FROM provider_batches WHERE tenant_id = %s"
    params: list[Any] = [tenant_id]
    if after_id:
        sql += " AND id < %s"
        params.append(after_id)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT %s", [*params, limit]).fetchall()
    return [ProviderBatch.from_row(row) for row in rows]


def get_batch(conn: Connection, *, tenant_id: str, batch_id: str) -> ProviderBatch | None:
    row = conn.execute(
        "SELECT * FROM provider_batches WHERE id = %s AND tenant_id = %s", (batch_id, tenant_id)
    ).fetchone()
    return ProviderBatch.from_row(row) if row is not None else None
