"""The intake queue's use case: other services submit `POST /generate` bodies over SQS."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from promptlab.core.errors import DependencyUnavailable, PromptLabError
from promptlab.core.observability import logger
from promptlab.core.validation import unsafe_json, validation_fields
from promptlab.db import keys_repo
from promptlab.db.connection import connection
from promptlab.infra.job_queue import JobQueue, get_queue
from promptlab.jobs.accept import accept_generation
from promptlab.models.generation import GenerateRequest
from promptlab.tenancy.auth import DEFAULT_TENANT, Principal


@dataclass(frozen=True)
class Submission:
    """One intake message."""

    body: str
    message_id: str
    tenant_id: str | None


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None  # pydantic names the problem next


def _reason(exc: ValidationError) -> str:
    fields = validation_fields([dict(e) for e in exc.errors()])
    return "invalid request: " + "; ".join(f"{f['field']}: {f['message']}" for f in fields)


def accept_submission(submission: Submission, queue: JobQueue | None = None) -> str | None:
    """Accept the job (once per message id) and return its id; reject bad messages to the intake DLQ."""
    queue = queue or get_queue()
    tenant_id = submission.tenant_id or DEFAULT_TENANT
    try:
        unsafe = unsafe_json(_json_or_none(submission.body))
        if unsafe is not None:
            raise ValueError(f"invalid request: {unsafe[0]}: {unsafe[1]}")
        request = GenerateRequest.model_validate_json(submission.body)
        with connection() as conn:
            if not keys_repo.tenant_exists(conn, tenant_id=tenant_id):
                raise ValueError(f"unknown tenant {tenant_id!r}")
        principal = Principal(tenant_id=tenant_id)
        job = accept_generation(principal=principal, request=request, source_message_id=submission.message_id)
    except DependencyUnavailable:
        raise  # transient: the message comes back and is tried again
    except ValidationError as exc:
        _reject(submission, _reason(exc), queue)
        return None
    except PromptLabError as exc:
        fields = "".join(f"; {f['field']}: {f['message']}" for f in exc.details.get("fields", []))
        _reject(submission, f"{exc.code}: {exc.message}{fields}", queue)
        return None
    except ValueError as exc:
        _reject(submission, str(exc), queue)
        return None
    logger.info("intake job accepted", job_id=job.id, tenant_id=tenant_id)
    return job.id


def _reject(submission: Submission, reason: str, queue: JobQueue) -> None:
    queue.reject_submission(body=submission.body, reason=reason, tenant_id=submission.tenant_id)
    logger.warning("intake message rejected", message_id=submission.message_id, reason=reason)
