"""The sweeper's SQL: unsent jobs, dead leases, deadlines and retention; bounded and safe to run twice."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection
from promptlab.db.jobs_repo import PURGE_COLUMNS

Row = dict[str, Any]


def unsent_jobs(conn: Connection, *, older_than_seconds: int, limit: int) -> list[Row]:
    """Queued jobs whose message never reached the queue, oldest first, locked for this transaction."""
    return conn.execute(
        "SELECT id, priority FROM jobs WHERE status = 'queued' AND enqueued_at IS NULL AND lane = 'standard'"
        " AND created_at < now() - make_interval(secs => %s) ORDER BY created_at LIMIT %s"
        " FOR UPDATE SKIP LOCKED",
        (older_than_seconds, limit),
    ).fetchall()


def release_expired_leases(conn: Connection, *, grace_seconds: int, limit: int) -> list[Row]:
    """Jobs whose worker vanished: close the open attempt as `interrupted` and requeue (or fail when spent).

    Returns the rows with `requeued` set, so the caller can send the requeued ones at once.
    """
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, priority, attempts, max_attempts FROM jobs WHERE status = 'processing'"
            " AND lease_until < now() - make_interval(secs => %s) ORDER BY lease_until LIMIT %s"
            " FOR UPDATE SKIP LOCKED",
            (grace_seconds, limit),
        ).fetchall()
        for row in rows:
            conn.execute(
                "UPDATE job_attempts SET outcome = 'interrupted', ended_at = now()"
                " WHERE job_id = %s AND n = %s AND ended_at IS NULL",
                (row["id"], row["attempts"]),
            )
            error = {
                "code": "interrupted",
                "message": f"the worker stopped during attempt {row['attempts']}; it may have been billed",
                "retryable": True,
                "providerStatus": None,
            }
            row["requeued"] = row["attempts"] < row["max_attempts"]
            if not row["requeued"]:
                conn.execute(
                    "UPDATE jobs SET status = 'failed', error = %s, lease_until = NULL, completed_at = now(),"
                    " updated_at = now() WHERE id = %s",
                    (Jsonb(error), row["id"]),
                )
            else:
                conn.execute(
                    "UPDATE jobs SET status = 'queued', error = %s, lease_until = NULL, enqueued_at = NULL,"
                    " updated_at = now() WHERE id = %s",
                    (Jsonb(error), row["id"]),
                )
    return rows


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


def purge_past_retention(conn: Connection, *, limit: int) -> list[Row]:
    """Purge finished jobs older than their tenant's retention period (bounded; safe to run twice at once)."""
    return conn.execute(
        f"UPDATE jobs SET {PURGE_COLUMNS} WHERE id IN ("
        " SELECT j.id FROM jobs j JOIN tenants t ON t.id = j.tenant_id"
        " WHERE t.retention_days IS NOT NULL AND j.purged_at IS NULL AND j.completed_at IS NOT NULL"
        " AND j.completed_at < now() - make_interval(days => t.retention_days)"
        " ORDER BY j.completed_at LIMIT %s FOR UPDATE OF j SKIP LOCKED) RETURNING id, input_hash",
        (limit,),
    ).fetchall()
