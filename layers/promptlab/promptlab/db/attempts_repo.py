"""Every SQL statement about a job's attempts: each provider call's row, written before the call."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection, Row


def start_attempt(conn: Connection, *, job_id: str, n: int) -> None:
    """Write the attempt row before the provider call, so a crash leaves evidence."""
    conn.execute("INSERT INTO job_attempts (job_id, n) VALUES (%s, %s) ON CONFLICT (job_id, n) DO NOTHING", (job_id, n))


def interrupt_attempt(conn: Connection, *, job_id: str, n: int) -> None:
    """Close the attempt a vanished worker left open as `interrupted` (it may have been billed)."""
    conn.execute(
        "UPDATE job_attempts SET outcome = 'interrupted', ended_at = now()"
        " WHERE job_id = %s AND n = %s AND ended_at IS NULL",
        (job_id, n),
    )


def end_attempt(
    conn: Connection, *, job_id: str, n: int, outcome: str, error: Row | None, provider_request_id: str | None
) -> None:
    """Close an attempt with its outcome."""
    conn.execute(
        "UPDATE job_attempts SET ended_at = now(), outcome = %s, error = %s, provider_request_id = %s"
        " WHERE job_id = %s AND n = %s",
        (outcome, Jsonb(error) if error else None, provider_request_id, job_id, n),
    )


def list_attempts(conn: Connection, *, job_id: str) -> list[Row]:
    """A job's attempts in order."""
    return conn.execute(
        "SELECT n, started_at, ended_at, outcome, error, provider_request_id FROM job_attempts"
        " WHERE job_id = %s ORDER BY n",
        (job_id,),
    ).fetchall()
