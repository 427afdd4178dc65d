"""Every SQL statement about dead letters: recorded once per message, redriven once."""

from __future__ import annotations

from typing import Any

from promptlab.db.connection import Connection, Row


def insert_dead_letter(
    conn: Connection,
    *,
    job_id: str | None,
    queue: str,
    reason: str,
    receive_count: int | None,
    message_id: str,
    body: str,
) -> bool:
    """Record a dead letter once per SQS message id; False when it was already recorded."""
    cur = conn.execute(
        "INSERT INTO dead_letters (job_id, queue, reason, receive_count, message_id, body)"
        " VALUES ((SELECT id FROM jobs WHERE id = %s), %s, %s, %s, %s, %s)"
        " ON CONFLICT (message_id) DO NOTHING",
        (job_id, queue, reason, receive_count, message_id, body),
    )
    return cur.rowcount == 1


def list_dead_letters(conn: Connection, *, limit: int = 100, dismissed: bool = False) -> list[Row]:
    """The newest dead letters (with `dismissed`, the dismissed ones too)."""
    where = "" if dismissed else " WHERE dismissed_at IS NULL"
    sql = f"SELECT * FROM dead_letters{where} ORDER BY id DESC LIMIT %s"
    return conn.execute(sql.encode(), (limit,)).fetchall()


def dismiss(conn: Connection, *, ids: list[int], without_job: bool) -> list[int]:
    """Set aside open dead letters (by id, or every one without a job); the ids dismissed now."""
    rows = conn.execute(
        "UPDATE dead_letters SET dismissed_at = now() WHERE dismissed_at IS NULL AND redriven_at IS NULL"
        " AND (id = ANY(%s) OR (%s AND job_id IS NULL)) RETURNING id",
        (ids, without_job),
    ).fetchall()
    return sorted(int(row["id"]) for row in rows)


def dead_letters_for_redrive(conn: Connection, *, tenant_id: str | None, job_id: str | None, limit: int) -> list[Row]:
    """Dead letters not yet redriven whose job is failed (one per job, the newest)."""
    sql = (
        "SELECT DISTINCT ON (d.job_id) d.id, d.job_id, j.priority FROM dead_letters d"
        " JOIN jobs j ON j.id = d.job_id WHERE d.redriven_at IS NULL AND d.dismissed_at IS NULL AND j.status = 'failed'"
    )
    params: list[Any] = []
    if tenant_id is not None:
        sql += " AND j.tenant_id = %s"
        params.append(tenant_id)
    if job_id is not None:
        sql += " AND d.job_id = %s"
        params.append(job_id)
    sql += " ORDER BY d.job_id, d.id DESC LIMIT %s"
    params.append(limit)
    return conn.execute(sql.encode(), params).fetchall()


def mark_redriven(conn: Connection, *, job_id: str) -> None:
    """Every open dead letter of the job is now redriven."""
    conn.execute("UPDATE dead_letters SET redriven_at = now() WHERE job_id = %s AND redriven_at IS NULL", (job_id,))
