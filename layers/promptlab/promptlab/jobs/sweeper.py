"""The sweeper's use case: send jobs that never reached the queue or whose message was lost, recover dead
leases, expire old jobs."""

from __future__ import annotations

from dataclasses import dataclass

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.db import attempts_repo, audit_repo, jobs_repo, sweeper_repo
from promptlab.db.connection import Connection, connection
from promptlab.db.sweeper_repo import LapsedLease
from promptlab.infra import result_cache
from promptlab.infra.job_queue import JobQueue, get_queue
from promptlab.jobs import job_hooks, openai_batches
from promptlab.jobs.lifecycle import announce
from promptlab.models.jobs import job_error

# A job whose message is not on the queue this long after it was made (the API or a worker died between its
# commit and the send, or SQS refused the send) is sent by the next sweep: within about a minute in all.
UNSENT_AFTER_SECONDS = 10


@dataclass(frozen=True)
class SweepReport:
    sent: int
    recovered: int
    expired: int
    purged: int = 0
    resent_lost: int = 0


def _recover_lapsed(conn: Connection, *, grace_seconds: int, limit: int) -> tuple[list[LapsedLease], list[LapsedLease]]:
    """Jobs whose worker vanished: the open attempt ends `interrupted`; a job with attempts left is queued
    again, the others fail. Returns (requeued, failed)."""
    requeued: list[LapsedLease] = []
    failed: list[LapsedLease] = []
    with conn.transaction():
        for lease in sweeper_repo.lapsed_leases(conn, grace_seconds=grace_seconds, limit=limit):
            attempts_repo.interrupt_attempt(conn, job_id=lease.id, n=lease.attempts)
            error = job_error(
                code="interrupted",
                message=f"the worker stopped during attempt {lease.attempts}; it may have been billed",
                retryable=True,
            )
            if lease.attempts < lease.max_attempts:
                sweeper_repo.requeue_lapsed(conn, job_id=lease.id, error=error)
                requeued.append(lease)
            else:
                jobs_repo.fail_job(conn, job_id=lease.id, error=error)
                failed.append(lease)
    return requeued, failed


def sweep(
    *,
    queue: JobQueue | None = None,
    unsent_after_seconds: int = UNSENT_AFTER_SECONDS,
    lease_grace_seconds: int = 0,
    lost_after_seconds: int | None = None,
    limit: int = 500,
) -> SweepReport:
    """One bounded, idempotent pass; safe to run twice at once (row locks skip what the other holds)."""
    queue = queue or get_queue()
    settings = get_settings()
    lost_after = settings.lost_message_seconds if lost_after_seconds is None else lost_after_seconds
    with connection() as conn:
        expired = sweeper_repo.expire_jobs(conn, limit=limit)
        requeued, failed = _recover_lapsed(conn, grace_seconds=lease_grace_seconds, limit=limit)
        sent = 0
        with conn.transaction():
            unsent = sweeper_repo.unsent_jobs(conn, older_than_seconds=unsent_after_seconds, limit=limit)
            unsent_ids = {u["id"] for u in unsent}
            to_send = [(u["id"], u["priority"]) for u in unsent]
            to_send += [(lease.id, lease.priority) for lease in requeued if lease.id not in unsent_ids]
            lost = sweeper_repo.lost_messages(conn, overdue_seconds=lost_after, limit=limit)
            to_send += [(row["id"], row["priority"]) for row in lost]
            for job_id, priority in to_send:
                try:
                    queue.send_job(job_id=job_id, priority=priority)
                except DependencyUnavailable:
                    logger.warning("sweeper could not reach the queue; next run tries again", job_id=job_id)
                    break
                jobs_repo.mark_enqueued(conn, job_id=job_id)
                sent += 1
        purged = sweeper_repo.purge_past_retention(conn, limit=limit)
        sweeper_repo.release_ended_reservations(conn, limit=limit)
        audit_repo.purge_older_than(conn, days=settings.audit_retention_days)
    openai_batches.sweep()  # batches whose last line ended get their files; expired files go
    sent += job_hooks.sweep_steps()  # the use cases above jobs that send jobs of their own (experiments)
    recovered = requeued + failed
    for job_id in expired + [lease.id for lease in failed]:
        announce(job_id)
    for hash_of_input in {row["input_hash"] for row in purged}:
        result_cache.forget(hash_of_input)
    report = SweepReport(
        sent=sent, recovered=len(recovered), expired=len(expired), purged=len(purged), resent_lost=len(lost)
    )
    logger.info(
        "sweep done",
        sent=report.sent,
        recovered=report.recovered,
        expired=report.expired,
        purged=report.purged,
        resent_lost=report.resent_lost,
    )
    return report
