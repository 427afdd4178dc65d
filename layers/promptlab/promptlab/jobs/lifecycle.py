"""The job state machine, the job's wire views, and the job use cases (read, list, cancel, retry)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime

from promptlab.core.clock import utc_now
from promptlab.core.errors import Conflict, DependencyUnavailable, NotFound, RateLimited
from promptlab.core.observability import logger
from promptlab.core.pagination import decode_cursor, encode_cursor
from promptlab.core.settings import get_settings
from promptlab.db import attempts_repo, jobs_repo, notifications_repo, purge_repo
from promptlab.db.connection import Connection, Row, connection
from promptlab.infra import job_ends, result_cache
from promptlab.infra.job_queue import get_queue
from promptlab.models.jobs import Job, JobPage, JobPublic, JobSummary
from promptlab.tenancy import budgets

QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED = "queued", "processing", "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})

# Which transition is allowed from which state; the SQL guards in jobs_repo enforce the same.
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({PROCESSING, FAILED, CANCELLED}),
    PROCESSING: frozenset({COMPLETED, FAILED, QUEUED, CANCELLED}),
    COMPLETED: frozenset(),
    FAILED: frozenset({QUEUED}),  # an explicit retry or a DLQ redrive
    CANCELLED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    """Whether a job may move from `current` to `target`."""
    return target in TRANSITIONS.get(current, frozenset())


def job_summary(job: Job) -> JobSummary:
    """The list view of a job."""
    return JobSummary.model_validate({**job.as_row(), "job_id": job.id})


def job_public(job: Job, attempts: list[Row] | None = None, notifications: list[Row] | None = None) -> JobPublic:
    """The full wire view of a job (with its attempts and announcements when given)."""
    return JobPublic.model_validate(
        {**job.as_row(), "job_id": job.id, "attempt_history": attempts, "notifications": notifications}
    )


def dispatch(conn: Connection, *, job_id: str, priority: str) -> bool:
    """Send the job's message and record it; on a queue outage the row stays for the sweeper."""
    try:
        get_queue().send_job(job_id=job_id, priority=priority)
    except DependencyUnavailable:
        logger.warning("job not enqueued; the sweeper will send it", job_id=job_id)
        return False
    jobs_repo.mark_enqueued(conn, job_id=job_id)
    return True


def announce(job_id: str, *, webhook: bool = True) -> None:
    """Wake the job's long polls and queue its announcement (best effort: an outage is only logged).

    `webhook=False` (the caller knows the job has no callback): announced only when EventBridge or SNS is
    configured, so a job nobody listens for costs no SQS message and no notifier invocation.
    """
    job_ends.publish_end(job_id)
    settings = get_settings()
    if not settings.notify_queue_url:
        return
    if not (webhook or settings.event_bus_name or settings.job_events_topic_arn):
        return
    try:
        get_queue().send_notification(job_id=job_id)
    except DependencyUnavailable:
        logger.warning("job end not announced: the notify queue is unreachable", job_id=job_id)


def _require(job: Job | None, job_id: str) -> Job:
    if job is None:
        raise NotFound(f"job {job_id!r} not found", details={"jobId": job_id})
    return job


WAIT_POLL_SECONDS = 0.05  # the re-read interval when Redis cannot wake the waiter
REREAD_SECONDS = 1.0


def get_job(
    *, tenant_id: str, job_id: str, wait_seconds: float = 0, waiter: str | None = None, wait_limit: int | None = None
) -> JobPublic:
    """A tenant's job with its attempt history, or 404.

    With `wait_seconds`, an unfinished job is waited for until it ends or the wait is over (a long poll):
    the worker's end-of-job message wakes the wait at once, and the job is re-read at least every second
    in case that message was lost. A `waiter` (the API key) holds at most `wait_limit` (default:
    `max_waits_per_key`) long polls at once (`RateLimited` beyond), so one client cannot hold every API sandbox.
    """
    with connection() as conn:
        row = _require(jobs_repo.get_job(conn, tenant_id=tenant_id, job_id=job_id), job_id)
    if row.status not in TERMINAL and wait_seconds > 0:
        row = wait_for_end(tenant_id=tenant_id, job_id=job_id, seconds=wait_seconds, waiter=waiter, limit=wait_limit)
    with connection() as conn:
        attempts = attempts_repo.list_attempts(conn, job_id=job_id)
        notifications = notifications_repo.list_notifications(conn, job_id=job_id)
    return job_public(row, attempts, notifications)


def wait_for_end(
    *, tenant_id: str, job_id: str, seconds: float, waiter: str | None = None, limit: int | None = None
) -> Job:
    """The job once it ends, or as it is after `seconds`, holding one of the waiter's long-poll places
    (`RateLimited` when it holds `limit` already)."""
    deadline = time.monotonic() + seconds
    limit = limit or get_settings().max_waits_per_key
    try:
        with job_ends.wait_slot(waiter or tenant_id, limit=limit, seconds=seconds):
            return _wait_for_end(tenant_id=tenant_id, job_id=job_id, deadline=deadline)
    except job_ends.TooManyWaits:
        raise RateLimited(
            f"this key already holds {limit} long polls; wait for one to end or poll without ?wait=",
            headers={"Retry-After": "1"},
            details={"limit": limit},
        ) from None


def _wait_for_end(*, tenant_id: str, job_id: str, deadline: float) -> Job:
    """Re-read the job when its end is announced (at least every second) until it ends or the deadline."""
    with job_ends.listening(job_id, WAIT_POLL_SECONDS) as wait:
        while True:  # no connection is held while waiting
            with connection() as conn:
                row = _require(jobs_repo.get_job(conn, tenant_id=tenant_id, job_id=job_id), job_id)
            if row.status in TERMINAL or time.monotonic() >= deadline:
                return row
            wait(min(REREAD_SECONDS, deadline - time.monotonic()))


def list_jobs(
    *,
    tenant_id: str,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    template_id: str | None = None,
    provider: str | None = None,
    priority: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> JobPage:
    """A page of a tenant's jobs, newest first, filtered."""
    filters = {
        "status": status,
        "template_id": template_id,
        "provider": provider,
        "priority": priority,
        "created_from": created_from,
        "created_to": created_to,
    }
    with connection() as conn:
        rows = jobs_repo.list_jobs(
            conn, tenant_id=tenant_id, limit=limit + 1, after_id=decode_cursor(cursor), filters=filters
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return JobPage(items=[job_summary(r) for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None)


def _conflict(job: Job, action: str) -> Conflict:
    return Conflict(f"a {job.status} job cannot be {action}", details={"jobId": job.id, "status": job.status})


def cancel_job(*, tenant_id: str, job_id: str) -> JobPublic:
    """Cancel a queued job, or a processing one (its result is then discarded, its cost kept)."""
    with connection() as conn:
        row = jobs_repo.cancel_job(conn, tenant_id=tenant_id, job_id=job_id)
        if row is None:
            raise _conflict(_require(jobs_repo.get_job(conn, tenant_id=tenant_id, job_id=job_id), job_id), "cancelled")
        attempts = attempts_repo.list_attempts(conn, job_id=job_id)
    logger.info("job cancelled", job_id=job_id)
    announce(job_id, webhook=row.callback_url is not None)
    return job_public(row, attempts)


def run_again(conn: Connection, *, tenant_id: str | None, job_id: str) -> Job | None:
    """Re-open a failed job with a fresh attempt budget (retry, redrive), its worst case reserved again
    against its key's budget in the same transaction (`BudgetExceeded` when it no longer fits); None when
    the job is not failed."""
    settings = get_settings()
    with conn.transaction():
        job = jobs_repo.get_job_any_tenant(conn, job_id=job_id)
        if job is None or job.status != FAILED or (tenant_id is not None and job.tenant_id != tenant_id):
            return None
        reservation = budgets.reserve_again(conn, job=job, extra_attempts=settings.max_attempts)
        row = jobs_repo.retry_job(
            conn,
            tenant_id=tenant_id,
            job_id=job_id,
            extra_attempts=settings.max_attempts,
            ttl_seconds=settings.job_ttl_seconds,
            reserved_usd=reservation.amount,
            budget_month=reservation.month,
        )
        if row is None:  # another retry won the race: leaving by an error rolls back this one's reservation
            raise Conflict("the job was re-opened by another request", details={"jobId": job_id})
    return row


def retry_job(*, tenant_id: str, job_id: str) -> JobPublic:
    """Run a failed job again with a fresh attempt budget (402 when its key's budget no longer covers it)."""
    with connection() as conn:
        try:
            row = run_again(conn, tenant_id=tenant_id, job_id=job_id)
        except Conflict:
            row = None
        if row is None:
            raise _conflict(_require(jobs_repo.get_job(conn, tenant_id=tenant_id, job_id=job_id), job_id), "retried")
        # The answer is the job as the retry left it (a worker may already hold it by the time this returns).
        if row.lane == "standard" and dispatch(conn, job_id=job_id, priority=row.priority):
            row = replace(row, enqueued_at=utc_now())
        attempts = attempts_repo.list_attempts(conn, job_id=job_id)
    logger.info("job retried", job_id=job_id)
    return job_public(row, attempts)


def dispatch_many(conn: Connection, *, jobs: list[tuple[str, str]]) -> set[str]:
    """Send many jobs' messages in SQS batches of 10; returns the ids sent (the rest wait for the sweeper)."""
    if not jobs:
        return set()
    sent = get_queue().send_jobs(jobs)
    if len(sent) < len(jobs):
        logger.warning("some jobs not enqueued; the sweeper will send them", unsent=len(jobs) - len(sent))
    jobs_repo.mark_enqueued_many(conn, job_ids=sorted(sent))
    return sent


def send_then_mark(jobs: list[tuple[str, str]]) -> set[str]:
    """`dispatch_many` without holding a database connection while the messages go out (a worker holds at
    most two; an SQS call is slower than a statement)."""
    if not jobs:
        return set()
    sent = get_queue().send_jobs(jobs)
    if len(sent) < len(jobs):
        logger.warning("some jobs not enqueued; they are sent again later", unsent=len(jobs) - len(sent))
    with connection() as conn:
        jobs_repo.mark_enqueued_many(conn, job_ids=sorted(sent))
    return sent


def purge_job(*, tenant_id: str, job_id: str) -> None:
    """Drop a finished job's input and output from Postgres and its result from the Redis cache.

    The accounting stays. A job still queued or processing is a 409: cancel it first.
    """
    with connection() as conn:
        purged = purge_repo.purge_job(conn, tenant_id=tenant_id, job_id=job_id)
        if purged is None:
            row = _require(jobs_repo.get_job(conn, tenant_id=tenant_id, job_id=job_id), job_id)
            raise Conflict(
                f"job {job_id!r} is {row.status}: cancel it before purging it",
                details={"jobId": job_id, "status": row.status},
            )
    for hash_of_input in {row["input_hash"] for row in purged}:
        result_cache.forget(hash_of_input)
    logger.info("job purged", job_id=job_id, copies=len(purged) - 1)
