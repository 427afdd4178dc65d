"""The sweeper's SQL: unsent jobs, dead leases, deadlines and retention; bounded and safe to run twice."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection, Row
from promptlab.db.purge_repo import PURGE_COLUMNS, purge_kept_copies


def unsent_jobs(conn: Connection, *, older_than_seconds: int, limit: int) -> list[Row]:
    """Queued jobs whose message never reached the queue, oldest first, locked for this transaction."""
    return conn.execute(
        "SELECT id, priority FROM jobs WHERE status = 'queued' AND enqueued_at IS NULL AND lane = 'standard'"
        " AND created_at < now() - make_interval(secs => %s)"
        # An experiment's jobs and judges wait their turn (its window): the experiment sends them (`feed`).
        " AND experiment_id IS NULL ORDER BY created_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (older_than_seconds, limit),
    ).fetchall()


def lost_messages(conn: Connection, *, overdue_seconds: int, limit: int) -> list[Row]:
    """Queued jobs whose message was sent (or due back from a delay) `overdue_seconds` ago and never claimed:
    a worker that received it died before the claim (or after a 429 gave the job back), so SQS hides it for
    the visibility timeout. Locked for this transaction; the caller sends each once more and marks it sent,
    so a job waiting in a long backlog gets at most one extra copy per period (the claim drops copies)."""
    return conn.execute(
        "SELECT id, priority FROM jobs WHERE status = 'queued' AND enqueued_at IS NOT NULL AND lane = 'standard'"
        " AND greatest(enqueued_at, message_due_at) < now() - make_interval(secs => %s)"
        " ORDER BY enqueued_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (overdue_seconds, limit),
    ).fetchall()


@dataclass(frozen=True)
class LapsedLease:
    """A `processing` job whose worker vanished: its lease ran out with an attempt still open."""

    id: str
    priority: str
    attempts: int
    max_attempts: int


def lapsed_leases(conn: Connection, *, grace_seconds: int, limit: int) -> list[LapsedLease]:
    """Jobs whose lease ran out, locked for the caller's transaction (a second sweeper skips them)."""
    rows = conn.execute(
        "SELECT id, priority, attempts, max_attempts FROM jobs WHERE status = 'processing'"
        " AND lease_until < now() - make_interval(secs => %s) ORDER BY lease_until LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (grace_seconds, limit),
    ).fetchall()
    return [LapsedLease(**row) for row in rows]


def requeue_lapsed(conn: Connection, *, job_id: str, error: Row) -> None:
    """Queue a lapsed job again (its message is sent by the caller, so `enqueued_at` is cleared)."""
    conn.execute(
        "UPDATE jobs SET status = 'queued', error = %s, lease_until = NULL, enqueued_at = NULL,"
        " updated_at = now() WHERE id = %s",
        (Jsonb(error), job_id),
    )


def expire_jobs(conn: Connection, *, limit: int) -> list[str]:
    """Fail queued jobs past their deadline with `expired`; returns their ids."""
    rows = conn.execute(
        "UPDATE jobs SET status = 'failed', completed_at = now(), updated_at = now(),"
        " error = jsonb_build_object('code', 'expired',"
        " 'message', 'the job was not started before expiresAt',"
        " 'retryable', false, 'providerStatus', null)"
        " WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND expires_at <= now()"
        " ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
        (limit,),
    ).fetchall()
    return [r["id"] for r in rows]


def release_ended_reservations(conn: Connection, *, limit: int) -> int:
    """Release what ended jobs still hold of a budget once their last call's lease ran out (a job cancelled
    during a call whose cost never came); the budget trigger moves the money."""
    cur = conn.execute(
        "UPDATE jobs SET reserved_cost_usd = 0 WHERE id IN (SELECT id FROM jobs WHERE reserved_cost_usd > 0"
        " AND status IN ('completed', 'failed', 'cancelled') AND (lease_until IS NULL OR lease_until < now())"
        " ORDER BY lease_until LIMIT %s FOR UPDATE SKIP LOCKED)",
        (limit,),
    )
    return cur.rowcount


def purge_past_retention(conn: Connection, *, limit: int) -> list[Row]:
    """Purge finished jobs older than their tenant's retention period (bounded; safe to run twice at once)."""
    purged = conn.execute(
        f"UPDATE jobs SET {PURGE_COLUMNS} WHERE id IN ("
        " SELECT j.id FROM jobs j JOIN tenants t ON t.id = j.tenant_id"
        " WHERE t.retention_days IS NOT NULL AND j.purged_at IS NULL AND j.completed_at IS NOT NULL"
        " AND j.completed_at < now() - make_interval(days => t.retention_days)"
        " ORDER BY j.completed_at LIMIT %s FOR UPDATE OF j SKIP LOCKED) RETURNING id, tenant_id, input_hash",
        (limit,),
    ).fetchall()
    for tenant_id in {row["tenant_id"] for row in purged}:
        ids = [row["id"] for row in purged if row["tenant_id"] == tenant_id]
        purge_kept_copies(conn, tenant_id=tenant_id, job_ids=ids)
    return purged
