"""Job routes: read (long poll), list, cancel, retry, purge; dead-letter redrive; provider batches."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from promptlab.api.answers import doc, json_response, no_content
from promptlab.api.declared import route
from promptlab.api.openapi_docs import JOB_ID
from promptlab.api.resolver import current_principal
from promptlab.jobs import batches, dead_letters, lifecycle
from promptlab.models.batches import BatchPage, BatchPublic
from promptlab.models.dead_letters import RedriveRequest, RedriveResult
from promptlab.models.jobs import JobPage, JobPublic
from promptlab.models.wire import JobStatus, Priority
from promptlab.tenancy import audit

router = Router()  # type: ignore[no-untyped-call]

JobId = Annotated[str, Path(min_length=1, max_length=64, description="A job id (`job_…`).")]


def _tenant() -> str:
    return current_principal().tenant_id


@route(
    router,
    "GET",
    "/jobs/<id>",
    scope="read",
    event="GetJob",
    summary="Read a job",
    description="The job with its output, tokens, cost and attempt history. `wait` (≤ 20 s) holds the answer until the"
    " job ends (long poll); a key holds at most 10 waits at once (429).",
    responses=doc(200, JobPublic, "The job with its attempt history", 404, 429),
    errors={404: ("not_found", f"no job {JOB_ID}"), 429: ("rate_limited", "this key already holds 10 long polls")},
    tags=["jobs"],
)
def get_job(
    id: JobId,
    wait: Annotated[
        float, Query(ge=0, le=20, description="Seconds to hold the answer until the job ends (long poll; ≤ 20).")
    ] = 0,
) -> Response[str]:
    principal = current_principal()
    job = lifecycle.get_job(
        tenant_id=principal.tenant_id, job_id=id, wait_seconds=wait, waiter=principal.key_id or principal.tenant_id
    )
    return json_response(200, job)


@route(
    router,
    "DELETE",
    "/jobs/<id>",
    scope="jobs:write",
    event="PurgeJob",
    summary="Purge a job",
    description="Removes the job's input and output everywhere (database, cache, copies); tokens and cost stay for"
    " billing.",
    responses=doc(204, None, "Input and output purged (Postgres and the result cache); accounting kept", 404, 409),
    errors={404: ("not_found", f"no job {JOB_ID}"), 409: ("conflict", "the job is still running; cancel it first")},
    tags=["jobs"],
)
def purge_job(id: JobId) -> Response[str]:
    lifecycle.purge_job(tenant_id=_tenant(), job_id=id)
    audit.record(current_principal(), "job.purged", "job", id)
    return no_content()


@route(
    router,
    "GET",
    "/jobs",
    scope="read",
    event="ListJobs",
    summary="List jobs",
    description="Jobs newest first, a page at a time, filtered by status, template, provider, priority or time.",
    responses=doc(200, JobPage, "A page of jobs, newest first", 422),
    tags=["jobs"],
)
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[JobStatus | None, Query()] = None,
    template_id: Annotated[str | None, Query(alias="templateId", max_length=64)] = None,
    provider: Annotated[str | None, Query(max_length=64)] = None,
    priority: Annotated[Priority | None, Query()] = None,
    created_from: Annotated[datetime | None, Query(alias="createdFrom", description="RFC 3339, inclusive")] = None,
    created_to: Annotated[datetime | None, Query(alias="createdTo", description="RFC 3339, exclusive")] = None,
) -> Response[str]:
    page = lifecycle.list_jobs(
        tenant_id=_tenant(),
        limit=limit,
        cursor=cursor,
        status=status,
        template_id=template_id,
        provider=provider,
        priority=priority,
        created_from=created_from,
        created_to=created_to,
    )
    return json_response(200, page)


@route(
    router,
    "POST",
    "/jobs/<id>/cancel",
    scope="jobs:write",
    event="CancelJob",
    summary="Cancel a job",
    description="A queued or running job ends `cancelled`; a call already made is still billed.",
    responses=doc(200, JobPublic, "Cancelled", 404, 409),
    errors={404: ("not_found", f"no job {JOB_ID}"), 409: ("conflict", "the job already ended completed")},
    tags=["jobs"],
)
def cancel_job(id: JobId) -> Response[str]:
    return json_response(200, lifecycle.cancel_job(tenant_id=_tenant(), job_id=id))


@route(
    router,
    "POST",
    "/jobs/<id>/retry",
    scope="jobs:write",
    event="RetryJob",
    summary="Retry a job",
    description="A failed or cancelled job runs again with a fresh attempt budget (its worst case reserved again).",
    responses=doc(200, JobPublic, "Queued again", 404, 409),
    errors={404: ("not_found", f"no job {JOB_ID}"), 409: ("conflict", "only failed or cancelled jobs are retried")},
    also=(402,),
    tags=["jobs"],
)
def retry_job(id: JobId) -> Response[str]:
    return json_response(200, lifecycle.retry_job(tenant_id=_tenant(), job_id=id))


@route(
    router,
    "POST",
    "/dlq/redrive",
    scope="jobs:write",
    event="RedriveDeadLetters",
    summary="Redrive dead letters",
    description="Sends this tenant's dead-lettered jobs again with a fresh attempt budget; jobs whose key's budget no"
    " longer covers them are listed under `refused`.",
    responses=doc(200, RedriveResult, "The jobs sent again", 400, 415, 422),
    request={"jobId": JOB_ID, "limit": 100},
    tags=["jobs"],
)
def redrive_dead_letters(body: RedriveRequest) -> Response[str]:
    result = dead_letters.redrive(tenant_id=_tenant(), job_id=body.job_id, limit=body.limit)
    audit.record(current_principal(), "dlq.redriven", "dlq", body.job_id or "*",
                 after={"redriven": len(result.redriven), "refused": len(result.refused)})  # fmt: skip
    return json_response(200, result)


BatchId = Annotated[str, Path(min_length=1, max_length=64, description="A provider batch id (`bat_…`).")]


@route(
    router,
    "GET",
    "/batches",
    scope="read",
    event="ListBatches",
    summary="List provider batches",
    description="The economy lane's provider batches (Anthropic Message Batches, OpenAI Batch).",
    responses=doc(200, BatchPage, "The economy lane's provider batches", 422),
    tags=["jobs"],
)
def list_batches(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return json_response(200, batches.list_batches(tenant_id=_tenant(), limit=limit, cursor=cursor))


@route(
    router,
    "GET",
    "/batches/<id>",
    scope="read",
    event="GetBatch",
    summary="Read a provider batch",
    description="Its provider id, status, counts and expiry.",
    responses=doc(200, BatchPublic, "One provider batch with its counts", 404),
    tags=["jobs"],
)
def get_batch(id: BatchId) -> Response[str]:
    return json_response(200, batches.get_batch(tenant_id=_tenant(), batch_id=id))
