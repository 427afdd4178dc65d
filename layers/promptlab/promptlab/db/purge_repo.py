"""Purging what a job holds of its tenant's data (input, output, their copies), keeping the accounting."""

from __future__ import annotations

from promptlab.db.connection import Connection, Row

_PURGED_ERROR = (
    "CASE WHEN {e} IS NULL THEN NULL WHEN {e}->>'code' = 'invalid_output'"
    " THEN ({e} - 'output') || jsonb_build_object('message', 'the answer did not fit the response format (purged)')"
    " ELSE {e} - 'output' END"
)
PURGE_COLUMNS = (
    "input = NULL, output = NULL, metadata = NULL, messages = NULL, tool_calls = NULL, error = "
    + _PURGED_ERROR.format(e="error")
    + ", purged_at = now(), updated_at = now()"
)


def purge_job(conn: Connection, *, tenant_id: str, job_id: str) -> list[Row] | None:
    """Drop a finished job's input and output — and those of the tenant's other finished jobs with the same
    input (the cache hits that copied its answer, or the job it copied) — keeping the accounting.

    Returns (id, input_hash) of every job purged; None when the job is not finished (or missing).
    """
    target = conn.execute(
        "SELECT input_hash FROM jobs WHERE id = %s AND tenant_id = %s"
        " AND status IN ('completed', 'failed', 'cancelled')",
        (job_id, tenant_id),
    ).fetchone()
    if target is None:
        return None
    purged = conn.execute(
        f"UPDATE jobs SET {PURGE_COLUMNS} WHERE tenant_id = %s AND (id = %s OR (input_hash = %s"
        " AND status IN ('completed', 'failed', 'cancelled'))) RETURNING id, input_hash",
        (tenant_id, job_id, target["input_hash"]),
    ).fetchall()
    purged += _purge_judges(conn, tenant_id=tenant_id, job_ids=[row["id"] for row in purged])
    purge_kept_copies(conn, tenant_id=tenant_id, job_ids=[row["id"] for row in purged])
    return purged


def _purge_judges(conn: Connection, *, tenant_id: str, job_ids: list[str]) -> list[Row]:
    """Purge the judges' jobs of these experiment answers (a judge's prompt quotes the answer and its dataset
    row; one not ended yet is cancelled), and the reasons a score could not be given; returns the judges."""
    judged = (
        "SELECT experiment_id, experiment_variant, experiment_row FROM jobs WHERE id = ANY(%s) AND tenant_id = %s"
        " AND experiment_id IS NOT NULL AND experiment_scorer IS NULL"
    )
    judges = conn.execute(
        f"UPDATE jobs SET {PURGE_COLUMNS}, status = CASE WHEN status IN ('queued', 'processing') THEN 'cancelled'"
        " ELSE status END, completed_at = coalesce(completed_at, now()) WHERE tenant_id = %s"
        " AND experiment_scorer IS NOT NULL AND (experiment_id, experiment_variant, experiment_row) IN ("
        f"{judged}) RETURNING id, input_hash",
        (tenant_id, job_ids, tenant_id),
    ).fetchall()
    conn.execute(
        "UPDATE experiment_scores SET error = 'purged' WHERE error IS NOT NULL AND (experiment_id, variant, row_n)"
        f" IN ({judged})",
        (job_ids, tenant_id),
    )
    return judges


def purge_kept_copies(conn: Connection, *, tenant_id: str, job_ids: list[str]) -> None:
    """Drop what else holds these jobs' content: their attempts' errors (an invalid answer is quoted there)
    and the answers idempotency keys replay."""
    if not job_ids:
        return
    conn.execute(
        f"UPDATE job_attempts SET error = {_PURGED_ERROR.format(e='error')}"
        " WHERE job_id = ANY(%s) AND error IS NOT NULL",
        (job_ids,),
    )
    conn.execute(
        "UPDATE idempotency_keys SET response = response || jsonb_build_object('input', null, 'output', null,"
        " 'messages', null, 'metadata', null, 'attemptHistory', null)"
        " WHERE tenant_id = %s AND response->>'id' = ANY(%s)",
        (tenant_id, job_ids),
    )
