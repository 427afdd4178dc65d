"""The sweeper's use case: send jobs that never reached the queue, recover dead leases, expire old jobs."""

from __future__ import annotations

from dataclasses import dataclass

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import logger
from promptlab.db import jobs_repo, sweeper_repo
from promptlab.db.connection import connection
from promptlab.infra import result_cache
from promptlab.infra.job_queue import JobQueue, get_queue
from promptlab.jobs.lifecycle import announce


@dataclass(frozen=True)
class SweepReport:
    sent: int
    recovered: int
    expired: int
    purged: int = 0


def sweep(
    *,
    queue: JobQueue | None = None,
    unsent_after_seconds: int = 60,
    lease_grace_seconds: int = 0,
    limit: int = 500,
) -> SweepReport:
    """One bounded, idempotent pass; safe to run twice at once (row locks skip what the other holds)."""
    queue = queue or get_queue()
    with connection() as conn:
        expired = sweeper_repo.expire_jobs(conn, limit=limit)
        recovered = sweeper_repo.release_expired_leases(conn, grace_seconds=lease_grace_seconds, limit=limit)
        sent = 0
        with conn.transaction():
            unsent = sweeper_repo.unsent_jobs(conn, older_than_seconds=unsent_after_seconds, limit=limit)
            requeued = [r for r in recovered if r["requeued"] and r["id"] not in {u["id"] for u in unsent}]
            for job in unsent + requeued:
                try:
                    queue.send_job(job_id=job["id"], priority=job["priority"])
                except DependencyUnavailable:
                    logger.warning("sweeper could not reach the queue; next run tries again", job_id=job["id"])
                    break
                jobs_repo.mark_enqueued(conn, job_id=job["id"])
                sent += 1
        purged = sweeper_repo.purge_past_retention(conn, limit=limit)
    for job_id in expired + [r["id"] for r in recovered if not r["requeued"]]:
        announce(job_id)
    for hash_of_input in {row["input_hash"] for row in purged}:
        result_cache.forget(hash_of_input)
    report = SweepReport(sent=sent, recovered=len(recovered), expired=len(expired), purged=len(purged))
    logger.info(
        "sweep done", sent=report.sent, recovered=report.recovered, expired=report.expired, purged=report.purged
    )
    return report
