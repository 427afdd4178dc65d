"""Every SQL statement about jobs, their attempts and dead letters: one statement per transition."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection

Row = dict[str, Any]

_JSON_COLUMNS = {"params", "input", "error", "unit_prices", "metadata", "warnings", "fallbacks", "messages"}


def _insert(job: Row) -> tuple[bytes, list[Any]]:
    # NULL columns are left out (every column that has a default is NOT NULL, so the row is the same; a test
    # checks it): a cache hit's insert binds ~36 values instead of ~52, which takes ~80 µs off it.
    columns = [c for c, value in job.items() if value is not None]
    values = [Jsonb(job[c]) if c in _JSON_COLUMNS else job[c] for c in columns]
    return f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})".encode(), values


def insert_job(conn: Connection, job: Row) -> Row:
    """Insert a new job row as given; returns it as stored.

    When the job would duplicate one already stored (the same intake message, or the same input while
    a single-flight job is in flight), that earlier job is returned instead.
    """
    sql, values = _insert(job)
    row = conn.execute(sql + b" ON CONFLICT DO NOTHING RETURNING *", values).fetchone()
    if row is None and job.get("source_message_id"):
        row = conn.execute("SELECT * FROM jobs WHERE source_message_id = %s", (job["source_message_id"],)).fetchone()
    if row is None and job.get("single_flight"):
        row = in_flight_job(conn, tenant_id=job["tenant_id"], input_hash=job["input_hash"])
    if row is None:  # the other job finished between our insert and this read: insert for real
        return insert_job(conn, {**job, "single_flight": False})
    return row


def in_flight_job(conn: Connection, *, tenant_id: str, input_hash: str) -> Row | None:
    """The queued or processing single-flight job with this input, if any."""
    return conn.execute(
        "SELECT * FROM jobs WHERE tenant_id = %s AND input_hash = %s AND single_flight"
        " AND status IN ('queued', 'processing')",
        (tenant_id, input_hash),
    ).fetchone()


def recent_result(conn: Connection, *, tenant_id: str, input_hash: str, max_age_seconds: int) -> Row | None:
    """The newest completed, provider-answered job with this input within the cache TTL."""
    return conn.execute(
        "SELECT * FROM jobs WHERE input_hash = %s AND status = 'completed' AND tenant_id = %s AND NOT cache_hit"
        " AND route_index = 0"
        " AND output IS NOT NULL AND completed_at > now() - make_interval(secs => %s)"
        " ORDER BY completed_at DESC LIMIT 1",
        (input_hash, tenant_id, max_age_seconds),
    ).fetchone()


def insert_cache_hit(conn: Connection, job: Row) -> None:
    """Store a job answered from the cache (on a connection that does not wait for the WAL flush).

    The row is complete as given (timestamps included), so nothing is read back.
    """
    sql, values = _insert(job)
    conn.execute(sql, values)


def mark_enqueued(conn: Connection, *, job_id: str) -> None:
    """Record that the job's message reached the queue."""
    conn.execute("UPDATE jobs SET enqueued_at = now(), updated_at = now() WHERE id = %s", (job_id,))


def get_job(conn: Connection, *, tenant_id: str, job_id: str) -> Row | None:
    """A tenant's job, or None."""
    return conn.execute("SELECT * FROM jobs WHERE id = %s AND tenant_id = %s", (job_id, tenant_id)).fetchone()


def claim_job(conn: Connection, *, job_id: str, base_timeout: float, lease_margin: float) -> Row | None:
    """Take the job for one attempt: queued, or processing with an expired lease and attempts left.

    None if not claimable (a job whose last attempt was interrupted is failed by the sweeper).

    The lease is the provider timeout for this job's maxTokens plus a margin (DESIGN.md §6).
    """
    return conn.execute(
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1,"
        " lease_until = now() + make_interval(secs => least(%s::float8"
        " + 0.05 * (params->>'maxTokens')::float8, 240) + %s::float8),"
        " started_at = coalesce(started_at, now()), updated_at = now()"
        " WHERE id = %s AND (status = 'queued'"
        " OR (status = 'processing' AND lease_until < now() AND attempts < max_attempts))"
        " AND expires_at > now() RETURNING *",
        (base_timeout, lease_margin, job_id),
    ).fetchone()


def start_attempt(conn: Connection, *, job_id: str, n: int) -> None:
    """Write the attempt row before the provider call, so a crash leaves evidence."""
    conn.execute("INSERT INTO job_attempts (job_id, n) VALUES (%s, %s) ON CONFLICT (job_id, n) DO NOTHING", (job_id, n))


def end_attempt(
    conn: Connection, *, job_id: str, n: int, outcome: str, error: Row | None, provider_request_id: str | None
) -> None:
    """Close an attempt with its outcome."""
    conn.execute(
        "UPDATE job_attempts SET ended_at = now(), outcome = %s, error = %s, provider_request_id = %s"
        " WHERE job_id = %s AND n = %s",
        (outcome, Jsonb(error) if error else None, provider_request_id, job_id, n),
    )


# The columns an answer fills when a job completes (one call, or one request of a provider batch).
ANSWER_COLUMNS = (
    "status = 'completed', output = %(output)s, finish_reason = %(finish_reason)s, truncated = %(truncated)s,"
    " input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s, cache_read_tokens = %(cache_read_tokens)s,"
    " cache_write_tokens = %(cache_write_tokens)s, total_tokens = %(total_tokens)s,"
    " estimated_cost_usd = %(estimated_cost_usd)s, unit_prices = %(unit_prices)s, answered_by = %(answered_by)s,"
    " warnings = %(warnings)s, error = NULL, completed_at = now(), updated_at = now()"
)


def answer_values(outcome: Row) -> Row:
    """An outcome as the parameters of `ANSWER_COLUMNS` (JSON columns wrapped)."""
    return {
        **outcome,
        "unit_prices": Jsonb(outcome["unit_prices"]) if outcome["unit_prices"] is not None else None,
        "warnings": Jsonb(outcome["warnings"]) if outcome.get("warnings") else None,
    }


def complete_job(conn: Connection, *, job_id: str, attempt: int, result: Row) -> Row | None:
    """Write the answer once: only the attempt that holds the job can complete it."""
    return conn.execute(
        f"UPDATE jobs SET {ANSWER_COLUMNS}, provider_latency_ms = %(provider_latency_ms)s, lease_until = NULL"
        " WHERE id = %(job_id)s AND status = 'processing' AND attempts = %(attempt)s RETURNING *".encode(),
        {**answer_values(result), "job_id": job_id, "attempt": attempt},
    ).fetchone()


def requeue_job(conn: Connection, *, job_id: str, attempt: int, error: Row) -> bool:
    """Hand the job back to the queue after a retryable failure."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'queued', error = %s, lease_until = NULL, updated_at = now()"
        " WHERE id = %s AND status = 'processing' AND attempts = %s",
        (Jsonb(error), job_id, attempt),
    )
    return cur.rowcount == 1


def record_invalid_output(conn: Connection, *, job_id: str, attempt: int, error: Row, spend: Row, retry: bool) -> bool:
    """An answer that failed its JSON format: keep what it cost, then queue the job again or fail it."""
    cur = conn.execute(
        "UPDATE jobs SET status = %(status)s, error = %(error)s, input_tokens = %(input_tokens)s,"
        " output_tokens = %(output_tokens)s, cache_read_tokens = %(cache_read_tokens)s,"
        " cache_write_tokens = %(cache_write_tokens)s, total_tokens = %(total_tokens)s,"
        " estimated_cost_usd = %(estimated_cost_usd)s, lease_until = NULL,"
        " completed_at = CASE WHEN %(retry)s THEN NULL ELSE now() END, updated_at = now()"
        " WHERE id = %(job_id)s AND status = 'processing' AND attempts = %(attempt)s",
        {
            **spend,
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


def route_of(conn: Connection, *, job_id: str) -> Row | None:
    """What the worker needs to know before claiming: the job's status and its current provider route."""
    return conn.execute(
        "SELECT status, provider, model, fallbacks, route_index FROM jobs WHERE id = %s", (job_id,)
    ).fetchone()


def get_job_any_tenant(conn: Connection, *, job_id: str) -> Row | None:
    """A job by id alone: only for the worker and the DLQ handler, which act for every tenant."""
    return conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()


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


def list_dead_letters(conn: Connection, *, limit: int = 100) -> list[Row]:
    """The newest dead letters."""
    return conn.execute("SELECT * FROM dead_letters ORDER BY id DESC LIMIT %s", (limit,)).fetchall()


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


def record_spend_on_cancelled(conn: Connection, *, job_id: str, attempt: int, result: Row) -> bool:
    """A job cancelled during its call: keep what the call cost (it was spent), drop the output. Once."""
    cur = conn.execute(
        "UPDATE jobs SET input_tokens = %(input_tokens)s, output_tokens = %(output_tokens)s,"
        " cache_read_tokens = %(cache_read_tokens)s, cache_write_tokens = %(cache_write_tokens)s,"
        " total_tokens = %(total_tokens)s, estimated_cost_usd = %(estimated_cost_usd)s,"
        " unit_prices = %(unit_prices)s, lease_until = NULL, updated_at = now()"
        " WHERE id = %(job_id)s AND status = 'cancelled' AND attempts = %(attempt)s AND total_tokens IS NULL",
        {
            **result,
            "unit_prices": Jsonb(result["unit_prices"]) if result["unit_prices"] is not None else None,
            "job_id": job_id,
            "attempt": attempt,
        },
    )
    return cur.rowcount == 1


def cancel_job(conn: Connection, *, tenant_id: str, job_id: str) -> Row | None:
    """Cancel a queued or processing job; None when it is in another state."""
    return conn.execute(
        "UPDATE jobs SET status = 'cancelled', completed_at = now(), updated_at = now()"
        " WHERE id = %s AND tenant_id = %s AND status IN ('queued', 'processing') RETURNING *",
        (job_id, tenant_id),
    ).fetchone()


def retry_job(
    conn: Connection, *, tenant_id: str | None, job_id: str, extra_attempts: int, ttl_seconds: int
) -> Row | None:
    """Give a failed job a fresh attempt budget and a new deadline; None when it is not failed."""
    sql = (
        "UPDATE jobs SET status = 'queued', max_attempts = attempts + %s, error = NULL, lease_until = NULL,"
        " single_flight = false, batch_id = NULL, batch_requeues = 0,"
        " completed_at = NULL, enqueued_at = NULL, expires_at = now() + make_interval(secs => %s),"
        " updated_at = now() WHERE id = %s AND status = 'failed'"
    )
    params: list[Any] = [extra_attempts, ttl_seconds, job_id]
    if tenant_id is not None:
        sql += " AND tenant_id = %s"
        params.append(tenant_id)
    return conn.execute(sql + " RETURNING *", params).fetchone()


def list_attempts(conn: Connection, *, job_id: str) -> list[Row]:
    """A job's attempts in order."""
    return conn.execute(
        "SELECT n, started_at, ended_at, outcome, error, provider_request_id FROM job_attempts"
        " WHERE job_id = %s ORDER BY n",
        (job_id,),
    ).fetchall()


def list_jobs(conn: Connection, *, tenant_id: str, limit: int, after_id: str | None, filters: Row) -> list[Row]:
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
    return conn.execute(sql.encode(), params).fetchall()


def dead_letters_for_redrive(conn: Connection, *, tenant_id: str | None, job_id: str | None, limit: int) -> list[Row]:
    """Dead letters not yet redriven whose job is failed (one per job, the newest)."""
    sql = (
        "SELECT DISTINCT ON (d.job_id) d.id, d.job_id, j.priority FROM dead_letters d"
        " JOIN jobs j ON j.id = d.job_id WHERE d.redriven_at IS NULL AND j.status = 'failed'"
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


def mark_enqueued_many(conn: Connection, *, job_ids: list[str]) -> None:
    """Record that these jobs' messages reached the queue."""
    if job_ids:
        conn.execute("UPDATE jobs SET enqueued_at = now(), updated_at = now() WHERE id = ANY(%s)", (job_ids,))


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


_PURGE = "input = NULL, output = NULL, metadata = NULL, messages = NULL, purged_at = now(), updated_at = now()"


def purge_job(conn: Connection, *, tenant_id: str, job_id: str) -> Row | None:
    """Drop a finished job's input and output, keep its accounting; None when it is not finished (or missing)."""
    return conn.execute(
        f"UPDATE jobs SET {_PURGE} WHERE id = %s AND tenant_id = %s"
        " AND status IN ('completed', 'failed', 'cancelled') RETURNING id, input_hash",
        (job_id, tenant_id),
    ).fetchone()


def purge_past_retention(conn: Connection, *, limit: int) -> list[Row]:
    """Purge finished jobs older than their tenant's retention period (bounded; safe to run twice at once)."""
    return conn.execute(
        f"UPDATE jobs SET {_PURGE} WHERE id IN ("
        " SELECT j.id FROM jobs j JOIN tenants t ON t.id = j.tenant_id"
        " WHERE t.retention_days IS NOT NULL AND j.purged_at IS NULL AND j.completed_at IS NOT NULL"
        " AND j.completed_at < now() - make_interval(days => t.retention_days)"
        " ORDER BY j.completed_at LIMIT %s FOR UPDATE OF j SKIP LOCKED) RETURNING id, input_hash",
        (limit,),
    ).fetchall()
