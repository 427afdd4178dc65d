"""Every SQL statement about jobs, their attempts and dead letters: one statement per transition."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection, Row
from promptlab.models.jobs import Answer, Handback, Job, JobRoute

_COLUMNS = Job.__slots__
_JSON_COLUMNS = {
    "params",
    "input",
    "error",
    "unit_prices",
    "metadata",
    "warnings",
    "fallbacks",
    "messages",
    "tool_calls",
}


def _job(row: Row | None) -> Job | None:
    return Job.from_row(row) if row is not None else None


def insert_statement(job: Job) -> tuple[bytes, list[Any]]:
    # NULL columns are left out (every column that has a default is NOT NULL, so the row is the same; a test
    # checks it): a cache hit's insert binds ~36 values instead of ~52, which takes ~80 µs off it.
    given = [(c, getattr(job, c)) for c in _COLUMNS]
    columns = [c for c, value in given if value is not None]
    values = [Jsonb(v) if c in _JSON_COLUMNS else v for c, v in given if v is not None]
    return f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})".encode(), values


def insert_job(conn: Connection, job: Job) -> Job:
    """Insert a new job row as given; returns it as stored.

    When the job would duplicate one already stored (the same intake message, or the same input while
    a single-flight job is in flight), that earlier job is returned instead.
    """
    sql, values = insert_statement(job)
    stored = _job(conn.execute(sql + b" ON CONFLICT DO NOTHING RETURNING *", values).fetchone())
    if stored is None and job.source_message_id:
        row = conn.execute("SELECT * FROM jobs WHERE source_message_id = %s", (job.source_message_id,)).fetchone()
        stored = _job(row)
    if stored is None and job.single_flight:
        stored = in_flight_job(conn, tenant_id=job.tenant_id, input_hash=job.input_hash)
    if stored is None:  # the other job finished between our insert and this read: insert for real
        return insert_job(conn, replace(job, single_flight=False))
    return stored


def in_flight_job(conn: Connection, *, tenant_id: str, input_hash: str) -> Job | None:
    """The queued or processing single-flight job with this input, if any."""
    return _job(
        conn.execute(
            "SELECT * FROM jobs WHERE tenant_id = %s AND input_hash = %s AND single_flight"
            " AND status IN ('queued', 'processing')",
            (tenant_id, input_hash),
        ).fetchone()
    )


def recent_result(conn: Connection, *, tenant_id: str, input_hash: str, max_age_seconds: int) -> Job | None:
    """The newest completed, provider-answered job with this input within the cache TTL."""
    return _job(
        conn.execute(
            "SELECT * FROM jobs WHERE input_hash = %s AND status = 'completed' AND tenant_id = %s AND NOT cache_hit"
            " AND route_index = 0"
            " AND output IS NOT NULL AND completed_at > now() - make_interval(secs => %s)"
            " ORDER BY completed_at DESC LIMIT 1",
            (input_hash, tenant_id, max_age_seconds),
        ).fetchone()
    )


def insert_cache_hit(conn: Connection, job: Job) -> None:
    """Store a job answered from the cache (on a connection that does not wait for the WAL flush).

    The row is complete as given (timestamps included), so nothing is read back.
    """
    sql, values = insert_statement(job)
    conn.execute(sql, values)


def mark_enqueued(conn: Connection, *, job_id: str) -> None:
    """Record that the job's message reached the queue."""
    conn.execute("UPDATE jobs SET enqueued_at = now(), updated_at = now() WHERE id = %s", (job_id,))


def get_job(conn: Connection, *, tenant_id: str, job_id: str) -> Job | None:
    """A tenant's job, or None."""
    return _job(conn.execute("SELECT * FROM jobs WHERE id = %s AND tenant_id = %s", (job_id, tenant_id)).fetchone())


def claim_job(
    conn: Connection, *, job_id: str, lease_seconds: float, token: str, handback: Handback | None = None
) -> Job | None:
    """Take the job for one attempt under the claim `token`: queued, or processing with an expired lease and
    attempts left, or processing under the claim a handback names (its worker lost a store and gave the job
    back: taken over at once, on the same attempt when the provider was not called).

    None if not claimable (a job whose last attempt was interrupted is failed by the sweeper).
    """
    given = handback.holder if handback else None
    called = handback.called if handback else False
    return _job(
        conn.execute(
            "UPDATE jobs SET status = 'processing',"
            " attempts = attempts + CASE WHEN status = 'processing' AND holder = %(given)s AND NOT %(called)s"
            " THEN 0 ELSE 1 END, holder = %(token)s,"
            " lease_until = now() + make_interval(secs => %(lease)s), started_at = coalesce(started_at, now()),"
            " updated_at = now() WHERE id = %(id)s AND expires_at > now() AND (status = 'queued'"
            " OR (status = 'processing' AND lease_until < now() AND attempts < max_attempts)"
            " OR (status = 'processing' AND holder = %(given)s AND (NOT %(called)s OR attempts < max_attempts)))"
            " RETURNING *",
            {"given": given, "called": called, "token": token, "lease": lease_seconds, "id": job_id},
        ).fetchone()
    )


def expect_message(conn: Connection, *, job_id: str, seconds: int) -> None:
    """Record when a queued job's delayed message is due back on the queue (a retry's backoff, a parked job):
    until then plus `lost_message_seconds`, the sweeper does not take it for lost."""
    conn.execute(
        "UPDATE jobs SET message_due_at = now() + make_interval(secs => %s) WHERE id = %s AND status = 'queued'",
        (seconds, job_id),
    )


def mark_unsent(conn: Connection, *, job_id: str) -> bool:
    """Record that a queued job has no message on the queue (one could not be put back): the sweeper sends it."""
    cur = conn.execute(
        "UPDATE jobs SET enqueued_at = NULL, updated_at = now() WHERE id = %s AND status = 'queued'", (job_id,)
    )
    return cur.rowcount == 1


# The columns an answer fills when a job completes (one call, or one request of a provider batch).
ANSWER_COLUMNS = (
    "status = 'completed', output = %(output)s, finish_reason = %(finish_reason)s, truncated = %(truncated)s,"
    " input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s, cache_read_tokens = %(cache_read_tokens)s,"
    " cache_write_tokens = %(cache_write_tokens)s, total_tokens = %(total_tokens)s,"
    " estimated_cost_usd = %(estimated_cost_usd)s, unit_prices = %(unit_prices)s, answered_by = %(answered_by)s,"
    " warnings = %(warnings)s, tool_calls = %(tool_calls)s, error = NULL, completed_at = now(), updated_at = now()"
)


def answer_values(answer: Answer) -> Row:
    """An answer as the parameters of `ANSWER_COLUMNS` (JSON columns wrapped)."""
    return {
        **asdict(answer),
        "unit_prices": Jsonb(answer.unit_prices) if answer.unit_prices is not None else None,
        "warnings": Jsonb(answer.warnings) if answer.warnings else None,
        "tool_calls": Jsonb(answer.tool_calls) if answer.tool_calls else None,
    }


def complete_job(conn: Connection, *, job_id: str, attempt: int, result: Answer) -> Job | None:
    """Write the answer once: only the attempt that holds the job can complete it."""
    return _job(
        conn.execute(
            f"UPDATE jobs SET {ANSWER_COLUMNS}, provider_latency_ms = %(provider_latency_ms)s, lease_until = NULL"
            " WHERE id = %(job_id)s AND status = 'processing' AND attempts = %(attempt)s RETURNING *".encode(),
            {**answer_values(result), "job_id": job_id, "attempt": attempt},
        ).fetchone()
    )


def completed_by(conn: Connection, *, job_id: str, attempt: int) -> Job | None:
    """The job if attempt `attempt` completed it (a completion whose commit was not acknowledged)."""
    return _job(
        conn.execute(
            "SELECT * FROM jobs WHERE id = %s AND status = 'completed' AND attempts = %s", (job_id, attempt)
        ).fetchone()
    )


def requeue_throttled(conn: Connection, *, job_id: str, attempt: int, error: Row, max_throttles: int) -> bool:
    """Hand the job back after a call the provider refused with a 429: the attempt is given back (one more
    allowed), at most `max_throttles` times. False when the job has used them up (or is no longer held)."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', error = %s, lease_until = NULL, max_attempts = max_attempts + 1,"
        " throttles = throttles + 1, updated_at = now()"
        " WHERE id = %s AND status = 'processing' AND attempts = %s AND throttles < %s",
        (Jsonb(error), job_id, attempt, max_throttles),
    )
    return cur.rowcount == 1


def requeue_job(conn: Connection, *, job_id: str, attempt: int, error: Row, due_in_seconds: int) -> bool:
    """Hand the job back to the queue after a retryable failure; its message is due back in `due_in_seconds`."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', error = %s, lease_until = NULL, updated_at = now(),"
        " message_due_at = now() + make_interval(secs => %s)"
        " WHERE id = %s AND status = 'processing' AND attempts = %s",
        (Jsonb(error), due_in_seconds, job_id, attempt),
    )
    return cur.rowcount == 1


def record_invalid_output(
    conn: Connection, *, job_id: str, attempt: int, error: Row, spend: Answer, retry: bool
) -> bool:
    """An answer that failed its JSON format: keep what it cost, then queue the job again or fail it."""
    cur = conn.execute(
        "UPDATE jobs SET status = %(status)s, error = %(error)s, input_tokens = %(input_tokens)s,"
        " output_tokens = %(output_tokens)s, cache_read_tokens = %(cache_read_tokens)s,"
        " cache_write_tokens = %(cache_write_tokens)s, total_tokens = %(total_tokens)s,"
        " estimated_cost_usd = %(estimated_cost_usd)s, lease_until = NULL,"
        " completed_at = CASE WHEN %(retry)s THEN NULL ELSE now() END, updated_at = now()"
        " WHERE id = %(job_id)s AND status = 'processing' AND attempts = %(attempt)s",
        {
            **asdict(spend),
            "status": "queued" if retry else "failed",
            "error": Jsonb(error),
            "retry": retry,
            "job_id": job_id,
            "attempt": attempt,
        },
    )
    return cur.rowcount == 1


def next_route(conn: Connection, *, job_id: str, attempt: int, extra_attempts: int, error: Row) -> bool:
    """Move the job to its next fallback with a fresh attempt budget (only the attempt holding it can)."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', route_index = route_index + 1, max_attempts = attempts + %s,"
        " error = %s, lease_until = NULL, updated_at = now()"
        " WHERE id = %s AND status = 'processing' AND attempts = %s",
        (extra_attempts, Jsonb(error), job_id, attempt),
    )
    return cur.rowcount == 1


def fail_job(conn: Connection, *, job_id: str, error: Row) -> bool:
    """End a job that is not already finished as `failed` with the reason."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'failed', error = %s, lease_until = NULL, completed_at = now(),"
        " updated_at = now() WHERE id = %s AND status IN ('queued', 'processing')",
        (Jsonb(error), job_id),
    )
    return cur.rowcount == 1


def route_of(conn: Connection, *, job_id: str) -> JobRoute | None:
    """What the worker needs to know before claiming: the job's status and its current provider route."""
    row = conn.execute(
        "SELECT status, provider, model, fallbacks, route_index, (params->>'maxTokens')::int AS max_tokens"
        " FROM jobs WHERE id = %s",
        (job_id,),
    ).fetchone()
    return JobRoute(**row) if row is not None else None


def get_job_any_tenant(conn: Connection, *, job_id: str) -> Job | None:
    """A job by id alone: only for the worker and the DLQ handler, which act for every tenant."""
    return _job(conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone())


def record_spend_on_cancelled(conn: Connection, *, job_id: str, attempt: int, result: Answer) -> bool:
    """A job cancelled during its call: keep what the call cost (it was spent), drop the output. Once."""
    cur = conn.execute(
        "UPDATE jobs SET input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s,"
        " cache_read_tokens = %(cache_read_tokens)s, cache_write_tokens = %(cache_write_tokens)s,"
        " total_tokens = %(total_tokens)s, estimated_cost_usd = %(estimated_cost_usd)s,"
        " unit_prices = %(unit_prices)s, lease_until = NULL, updated_at = now()"
        " WHERE id = %(job_id)s AND status = 'cancelled' AND attempts = %(attempt)s AND total_tokens IS NULL",
        {**answer_values(result), "job_id": job_id, "attempt": attempt},
    )
    return cur.rowcount == 1


def cancel_job(conn: Connection, *, tenant_id: str, job_id: str) -> Job | None:
    """Cancel a queued or processing job; None when it is in another state."""
    return _job(
        conn.execute(
            "UPDATE jobs SET status = 'cancelled', completed_at = now(), updated_at = now()"
            " WHERE id = %s AND tenant_id = %s AND status IN ('queued', 'processing') RETURNING *",
            (job_id, tenant_id),
        ).fetchone()
    )


def retry_job(
    conn: Connection,
    *,
    tenant_id: str | None,
    job_id: str,
    extra_attempts: int,
    ttl_seconds: int,
    reserved_usd: Decimal | None,
    budget_month: date | None,
) -> Job | None:
    """Give a failed job a fresh attempt budget, a new deadline and the reservation granted for it; None when
    it is not failed."""
    sql = (
        "UPDATE jobs SET status = 'queued', max_attempts = attempts + %s, error = NULL, lease_until = NULL,"
        " single_flight = false, batch_id = NULL, batch_requeues = 0, reserved_cost_usd = %s, budget_month = %s,"
        " completed_at = NULL, enqueued_at = NULL, expires_at = now() + make_interval(secs => %s),"
        " updated_at = now() WHERE id = %s AND status = 'failed'"
    )
    params: list[Any] = [extra_attempts, reserved_usd, budget_month, ttl_seconds, job_id]
    if tenant_id is not None:
        sql += " AND tenant_id = %s"
        params.append(tenant_id)
    return _job(conn.execute(sql + " RETURNING *", params).fetchone())


def list_jobs(conn: Connection, *, tenant_id: str, limit: int, after_id: str | None, filters: Row) -> list[Job]:
    """A tenant's jobs newest first, without their input and output."""
    sql = "SELECT * FROM jobs WHERE tenant_id = %s"
    params: list[Any] = [tenant_id]
    for column in ("status", "template_id", "provider", "priority"):
        if filters.get(column) is not None:
            sql += f" AND {column} = %s"
            params.append(filters[column])
    if filters.get("created_from") is not None:
        sql += " AND created_at >= %s"
        params.append(filters["created_from"])
    if filters.get("created_to") is not None:
        sql += " AND created_at < %s"
        params.append(filters["created_to"])
    if after_id:
        sql += " AND id < %s"
        params.append(after_id)
    sql += " ORDER BY id DESC LIMIT %s"
    params.append(limit)
    return [Job.from_row(row) for row in conn.execute(sql.encode(), params).fetchall()]


def mark_enqueued_many(conn: Connection, *, job_ids: list[str]) -> None:
    """Record that these jobs' messages reached the queue."""
    if job_ids:
        conn.execute("UPDATE jobs SET enqueued_at = now(), updated_at = now() WHERE id = ANY(%s)", (job_ids,))


# What a purge keeps of an error: its code and numbers, never an answer it quoted.
