"""The intake queue's use case: other services submit `POST /generate` bodies over SQS.

A message acts for the tenant of the API key in its `apiKey` attribute, checked like the HTTP path's key,
with that key's request limit and budget; a message without a live key is rejected, never given a
default tenant. A `tenant` attribute, when sent, must name the key's tenant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from promptlab.core.errors import DependencyUnavailable, PromptLabError, RateLimited, Unauthorized
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.core.validation import unsafe_json, validation_fields
from promptlab.db import keys_repo
from promptlab.db.connection import connection
from promptlab.infra import request_limits
from promptlab.infra.job_queue import JobQueue, get_queue
from promptlab.jobs.accept import accept_generation
from promptlab.models.generation import GenerateRequest
from promptlab.tenancy import auth
from promptlab.tenancy.auth import DEFAULT_TENANT, Principal


@dataclass(frozen=True)
class Submission:
    """One intake message."""

    body: str
    message_id: str
    tenant_id: str | None
    api_key: str | None = None


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None  # pydantic names the problem next


def _reason(exc: ValidationError) -> str:
    fields = validation_fields([dict(e) for e in exc.errors()])
    return "invalid request: " + "; ".join(f"{f['field']}: {f['message']}" for f in fields)


def _principal(submission: Submission) -> Principal:
    """Who the message acts for: its key's tenant (auth off: its `tenant` attribute, else `default`)."""
    if not get_settings().auth:
        tenant_id = submission.tenant_id or DEFAULT_TENANT
        with connection() as conn:
            if not keys_repo.tenant_exists(conn, tenant_id=tenant_id):
                raise ValueError(f"unknown tenant {tenant_id!r}")
        return Principal(tenant_id=tenant_id)
    principal = auth.principal_for_key(submission.api_key)
    if submission.tenant_id is not None and submission.tenant_id != principal.tenant_id:
        raise Unauthorized("the `tenant` attribute names another tenant than the API key's")
    if principal.key_id is not None and principal.rpm_limit:
        decision = request_limits.check_items(key_id=principal.key_id, key_limit=principal.rpm_limit, items=1)
        if decision is not None and not decision.admitted:
            # Transient: the message comes back after its visibility timeout and is tried again.
            raise RateLimited(f"key {principal.key_name!r} is over its request limit")
    return principal


def accept_submission(submission: Submission, queue: JobQueue | None = None) -> str | None:
    """Accept the job (once per message id) and return its id; reject bad messages to the intake DLQ."""
    queue = queue or get_queue()
    try:
        unsafe = unsafe_json(_json_or_none(submission.body))
        if unsafe is not None:
            raise ValueError(f"invalid request: {unsafe[0]}: {unsafe[1]}")
        principal = _principal(submission)
        request = GenerateRequest.model_validate_json(submission.body)
        job = accept_generation(principal=principal, request=request, source_message_id=submission.message_id)
    except (DependencyUnavailable, RateLimited):
        raise  # transient: the message comes back and is tried again
    except ValidationError as exc:
        _reject(submission, _reason(exc), code="validation_error", fields=_fields(exc), queue=queue)
        return None
    except PromptLabError as exc:
        fields = [f["field"] for f in exc.details.get("fields", [])]
        detail = "".join(f"; {f['field']}: {f['message']}" for f in exc.details.get("fields", []))
        _reject(submission, f"{exc.code}: {exc.message}{detail}", code=exc.code, fields=fields, queue=queue)
        return None
    except ValueError as exc:
        _reject(submission, str(exc), code="bad_request", queue=queue)
        return None
    logger.info("intake job accepted", job_id=job.id, tenant_id=principal.tenant_id)
    return job.id


def _fields(exc: ValidationError) -> list[str]:
    return [f["field"] for f in validation_fields([dict(e) for e in exc.errors()])]


def _reject(
    submission: Submission, reason: str, *, code: str, fields: list[str] | None = None, queue: JobQueue | None = None
) -> None:
    """Send the message to the intake DLQ with the reason (for its sender); the log says only the code and
    the fields at fault, never a value (reasons may quote the input)."""
    (queue or get_queue()).reject_submission(body=submission.body, reason=reason, tenant_id=submission.tenant_id)
    logger.warning("intake message rejected", message_id=submission.message_id, code=code, fields=fields or [])
