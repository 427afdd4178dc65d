"""The job state machine and the job's wire view."""

from __future__ import annotations

from typing import Any

from promptlab.db import jobs_repo
from promptlab.db.connection import connection
from promptlab.errors import NotFound
from promptlab.models import JobPublic

QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED = "queued", "processing", "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})

# Which transition is allowed from which state; the SQL guards in jobs_repo enforce the same.
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({PROCESSING, FAILED, CANCELLED}),
    PROCESSING: frozenset({COMPLETED, FAILED, QUEUED, CANCELLED}),
    COMPLETED: frozenset(),
    FAILED: frozenset({QUEUED}),  # an explicit retry
    CANCELLED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    """Whether a job may move from `current` to `target`."""
    return target in TRANSITIONS.get(current, frozenset())


def job_public(row: dict[str, Any]) -> JobPublic:
    """The wire view of a job row."""
    return JobPublic.model_validate({**row, "job_id": row["id"]})


def get_job(*, tenant_id: str, job_id: str) -> JobPublic:
    """A tenant's job or 404."""
    with connection() as conn:
        row = jobs_repo.get_job(conn, tenant_id=tenant_id, job_id=job_id)
    if row is None:
        raise NotFound(f"job {job_id!r} not found", details={"jobId": job_id})
    return job_public(row)
