"""Many jobs at once: a batch file's lines inserted in a pipeline, and the recent results of many inputs."""

from __future__ import annotations

from typing import Any

from promptlab.db.connection import Connection
from promptlab.db.jobs_repo import insert_statement
from promptlab.models.jobs import Job


def recent_results(conn: Connection, *, tenant_id: str, input_hashes: list[str], max_age_seconds: int) -> list[Job]:
    """`recent_result` for many inputs at once: the newest such job of each."""
    rows = conn.execute(
        "SELECT DISTINCT ON (input_hash) * FROM jobs WHERE input_hash = ANY(%s) AND status = 'completed'"
        " AND tenant_id = %s AND NOT cache_hit AND route_index = 0 AND output IS NOT NULL"
        " AND completed_at > now() - make_interval(secs => %s) ORDER BY input_hash, completed_at DESC",
        (input_hashes, tenant_id, max_age_seconds),
    ).fetchall()
    return [Job.from_row(row) for row in rows]


def insert_new_jobs(conn: Connection, jobs: list[Job]) -> None:
    """Insert many new jobs as given (no single flight, no intake message: nothing to join), in a pipeline."""
    by_statement: dict[bytes, list[list[Any]]] = {}
    for job in jobs:
        sql, values = insert_statement(job)
        by_statement.setdefault(sql, []).append(values)
    with conn.cursor() as cur:
        for sql, rows in by_statement.items():
            cur.executemany(sql, rows)
