"""The DLQ handler's use case: end the job `failed` with its reason and keep the dead letter."""

from __future__ import annotations

from dataclasses import dataclass

from promptlab.core.errors import BudgetExceeded, Conflict, PoisonMessage
from promptlab.core.observability import logger
from promptlab.db import dead_letters_repo, jobs_repo
from promptlab.db.connection import connection
from promptlab.jobs.lifecycle import announce, dispatch, run_again
from promptlab.models.dead_letters import DeadLetterPublic, RedriveRefusal, RedriveResult
from promptlab.models.jobs import parse_job_message


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
        job_id: str | None = parse_job_message(letter.body).job_id
    except PoisonMessage:
        job_id = None
    reason = letter.reason or f"dead-lettered after {letter.receive_count or 'too many'} receives"
    with connection() as conn:
        if job_id is None or jobs_repo.get_job_any_tenant(conn, job_id=job_id) is None:
            # Nothing to fail or redrive: say so, so an operator can dismiss it (`promptlab dlq dismiss`).
            named = f"no job {job_id}" if job_id else "no job id in the message"
            reason, job_id = f"{named} (not a PromptLab job, or purged): {reason}", None
        error = {"code": "dead_lettered", "message": reason, "retryable": False, "providerStatus": None}
        failed_now = job_id is not None and jobs_repo.fail_job(conn, job_id=job_id, error=error)
        dead_letters_repo.insert_dead_letter(
            conn,
            job_id=job_id,
            queue=letter.queue,
            reason=reason,
            receive_count=letter.receive_count,
            message_id=letter.message_id,
            body=letter.body,
        )
    if failed_now and job_id is not None:
        announce(job_id)
    logger.warning("dead letter recorded", job_id=job_id, reason=reason)
    return job_id


def list_dead_letters(*, limit: int = 100, dismissed: bool = False) -> list[DeadLetterPublic]:
    """The newest dead letters with their reasons (dismissed ones only when asked)."""
    with connection() as conn:
        rows = dead_letters_repo.list_dead_letters(conn, limit=limit, dismissed=dismissed)
    return [DeadLetterPublic.model_validate(r) for r in rows]


def dismiss(*, ids: list[int], without_job: bool = False) -> list[int]:
    """Set dead letters aside: they leave the list and are never redriven. Returns the ids dismissed now."""
    with connection() as conn:
        dismissed = dead_letters_repo.dismiss(conn, ids=ids, without_job=without_job)
    logger.info("dead letters dismissed", count=len(dismissed))
    return dismissed


def redrive(*, tenant_id: str | None, job_id: str | None = None, limit: int = 100) -> RedriveResult:
    """Re-send dead-lettered failed jobs with a fresh attempt budget; each dead letter is redriven once.

    A job whose key's budget no longer covers its worst case stays failed and is listed as refused.
    """
    redriven: list[str] = []
    refused: list[RedriveRefusal] = []
    with connection() as conn:
        for letter in dead_letters_repo.dead_letters_for_redrive(conn, tenant_id=tenant_id, job_id=job_id, limit=limit):
            try:
                with conn.transaction():
                    row = run_again(conn, tenant_id=tenant_id, job_id=letter["job_id"])
                    if row is None:
                        continue
                    dead_letters_repo.mark_redriven(conn, job_id=letter["job_id"])
            except (BudgetExceeded, Conflict) as exc:
                refused.append(RedriveRefusal(job_id=letter["job_id"], code=exc.code, message=exc.message))
                continue
            dispatch(conn, job_id=row.id, priority=row.priority)
            redriven.append(row.id)
    logger.info("dead letters redriven", count=len(redriven), refused=len(refused))
    return RedriveResult(redriven=redriven, refused=refused)
