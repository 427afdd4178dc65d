"""Every SQL statement about announcing finished jobs: one row per delivery attempt."""

from __future__ import annotations

from promptlab.db.connection import Connection, Row


def delivered_channels(conn: Connection, *, job_id: str, event: str) -> set[str]:
    """Channels that already took this job's announcement."""
    rows = conn.execute(
        "SELECT DISTINCT channel FROM job_notifications WHERE job_id = %s AND event = %s AND delivered",
        (job_id, event),
    ).fetchall()
    return {r["channel"] for r in rows}


def record_notification(
    conn: Connection,
    *,
    job_id: str,
    channel: str,
    event: str,
    attempt: int,
    status_code: int | None,
    error: str | None,
    delivered: bool,
) -> None:
    """Keep one delivery attempt, visible on the job."""
    conn.execute(
        "INSERT INTO job_notifications (job_id, channel, event, attempt, status_code, error, delivered)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (job_id, channel, event, attempt, status_code, error, delivered),
    )


def list_notifications(conn: Connection, *, job_id: str) -> list[Row]:
    """A job's announcement attempts in order."""
    return conn.execute(
        "SELECT channel, event, attempt, status_code, error, delivered, created_at FROM job_notifications"
        " WHERE job_id = %s ORDER BY id",
        (job_id,),
    ).fetchall()
