"""The DLQ handler's use case: end the job `failed` with its reason and keep the dead letter."""

from __future__ import annotations

from dataclasses import dataclass

from promptlab.db import jobs_repo
from promptlab.db.connection import connection
from promptlab.observability import logger
from promptlab.processing import PoisonMessage, parse_message


@dataclass(frozen=True)
class DeadLetter:
    """One record that reached the dead-letter queue."""

    body: str
    message_id: str
    queue: str
    receive_count: int | None
    reason: str | None


def record_dead_letter(letter: DeadLetter) -> str | None:
    """Mark the job failed (keeping an earlier error) and store the letter once; returns the job id."""
    try:
        job_id: str | None = parse_message(letter.body).job_id
    except PoisonMessage:
        job_id = None
    reason = letter.reason or f"dead-lettered after {letter.receive_count or 'too many'} receives"
    with connection() as conn:
        if job_id is not None:
            jobs_repo.fail_job(
                conn,
                job_id=job_id,
                error={
                    "code": "dead_lettered",
                    "message": reason,
                    "retryable": False,
                    "providerStatus": None,
                },
            )
        jobs_repo.insert_dead_letter(
            conn,
            job_id=job_id,
            queue=letter.queue,
            reason=reason,
            receive_count=letter.receive_count,
            message_id=letter.message_id,
            body=letter.body,
        )
    logger.warning("dead letter recorded", job_id=job_id, reason=reason)
    return job_id
