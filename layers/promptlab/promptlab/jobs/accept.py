"""The accept path of `POST /generate`: build the job → cache → single flight → budget → persist → enqueue."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from pydantic import ValidationError

from promptlab.core.clock import utc_now
from promptlab.core.errors import FieldProblem, PromptLabError, ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import count, logger
from promptlab.core.validation import validation_fields
from promptlab.db import job_bulk_repo, jobs_repo
from promptlab.db.connection import Connection, connection
from promptlab.infra import result_cache
from promptlab.jobs.lifecycle import dispatch, dispatch_many, job_public
from promptlab.jobs.requests import new_job
from promptlab.models.generation import BatchItemError, BatchItemResult, GenerateBatchResult, GenerateRequest
from promptlab.models.jobs import CachedResult, Job, JobPublic
from promptlab.models.templates import Template
from promptlab.templates.service import template_for_generation
from promptlab.tenancy import budgets
from promptlab.tenancy.auth import Principal


def cache_hit_job(job: Job, result: CachedResult) -> Job:
    """A completed job answered from the cache: it cost nothing and saved what the original cost."""
    now = utc_now()
    return replace(
        job,
        status="completed",
        cache_hit=True,
        single_flight=False,
        output=result.output,
        finish_reason=result.finish_reason,
        truncated=result.truncated,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cache_read_tokens=result.cache_read_tokens,
        cache_write_tokens=result.cache_write_tokens,
        total_tokens=result.total_tokens,
        estimated_cost_usd=Decimal(0),
        saved_cost_usd=result.estimated_cost_usd,
        answered_by=result.answered_by,
        tool_calls=result.tool_calls,
        attempts=0,
        started_at=now,
        completed_at=now,
        created_at=now,
        updated_at=now,
    )


@dataclass(frozen=True)
class Prefetched:
    """The Redis cache's answer for a job's hash, read earlier (with the rate limiter); None: a miss."""

    value: CachedResult | None


def cached_result(
    conn: Connection, *, job: Job, ttl_seconds: int, prefetched: Prefetched | None = None
) -> CachedResult | None:
    """The answer for this input: Redis first, then a recent completed job in Postgres (re-cached)."""
    found = prefetched.value if prefetched is not None else result_cache.get_result(job.input_hash)
    if found is not None:
        return found
    done = jobs_repo.recent_result(
        conn, tenant_id=job.tenant_id, input_hash=job.input_hash, max_age_seconds=ttl_seconds
    )
    if done is None or done.completed_at is None:
        return None
    result = CachedResult.of(done)
    remaining = ttl_seconds - int((utc_now() - done.completed_at).total_seconds())
    result_cache.put_result(job.input_hash, result, ttl_seconds=remaining)
    return result


def cached_results(conn: Connection, *, jobs: list[tuple[Job, int]]) -> dict[str, CachedResult]:
    """`cached_result` for many jobs of one tenant at once ((job, its template's TTL) pairs); by job id."""
    if not jobs:
        return {}
    hashes = sorted({job.input_hash for job, _ in jobs})
    cached = result_cache.get_results(hashes)
    missing = [h for h in hashes if h not in cached]
    done = {
        j.input_hash: j
        for j in (
            job_bulk_repo.recent_results(
                conn, tenant_id=jobs[0][0].tenant_id, input_hashes=missing, max_age_seconds=max(ttl for _, ttl in jobs)
            )  # fmt: skip
            if missing
            else []
        )
    }
    found: dict[str, CachedResult] = {}
    for job, ttl in jobs:
        if job.input_hash in cached:
            found[job.id] = cached[job.input_hash]
            continue
        earlier = done.get(job.input_hash)
        if earlier is None or earlier.completed_at is None:
            continue
        remaining = ttl - int((utc_now() - earlier.completed_at).total_seconds())
        if remaining > 0:
            found[job.id] = result = CachedResult.of(earlier)
            result_cache.put_result(job.input_hash, result, ttl_seconds=remaining)
    return found


def _store(
    conn: Connection,
    *,
    principal: Principal,
    template: Template,
    job: Job,
    caching: bool,
    prefetched: Prefetched | None = None,
) -> tuple[Job, bool]:
    """Answer from the cache, join the identical job in flight, or store the new job; True when it is new.

    Only a new job is charged to the key's budget (cache hits are free, joining a job in flight too).
    """
    if caching:
        result = cached_result(conn, job=job, ttl_seconds=template.cache_ttl_seconds, prefetched=prefetched)
        if result is not None:
            row = cache_hit_job(job, result)
            with connection(durable=False) as fast:
                jobs_repo.insert_cache_hit(fast, row)
            count("CacheHits")
            logger.info("job answered from cache", job_id=row.id, source_job_id=result.job_id)
            return row, False
    with conn.transaction():
        reservation = budgets.reserve(conn, principal=principal, template=template, job=job)
        row = jobs_repo.insert_job(conn, replace(reservation.on(job), single_flight=caching))
        # Another id: the same request already in flight, or a redelivered intake message.
        new = row.id == job.id
        if not new:
            budgets.release(conn, reservation=reservation)
    return row, new


def accept_generation(
    *, principal: Principal, request: GenerateRequest, source_message_id: str | None = None, use_cache: bool = True
) -> JobPublic:
    """Answer from the cache, join an identical job in flight, or persist a new job and send its message."""
    template = template_for_generation(tenant_id=principal.tenant_id, template_id=request.template_id)
    job = new_job(template=template, principal=principal, request=request, source_message_id=source_message_id)
    return accept_job(principal=principal, request=request, template=template, job=job, use_cache=use_cache)


def accept_job(
    *,
    principal: Principal,
    request: GenerateRequest,
    template: Template,
    job: Job,
    use_cache: bool = True,
    prefetched: Prefetched | None = None,
) -> JobPublic:
    """`accept_generation` for a job already built (the API's fast path builds it before the rate limiter,
    so the cache lookup rides in the limiter's Redis round trip)."""
    with connection() as conn:
        caching = use_cache and request.cache
        row, new = _store(conn, principal=principal, template=template, job=job, caching=caching, prefetched=prefetched)
        if new:
            if row.lane == "standard" and dispatch(conn, job_id=row.id, priority=request.priority):
                row = replace(row, enqueued_at=utc_now())
            count("JobsAccepted")
            logger.info("job accepted", job_id=row.id, template_id=row.template_id, provider=row.provider)
    return job_public(row)


def _item_error(exc: PromptLabError) -> BatchItemResult:
    return BatchItemResult(error=BatchItemError(code=exc.code, message=exc.message, details=exc.details))


def accept_batch(*, principal: Principal, items: list[JsonObject], use_cache: bool = True) -> GenerateBatchResult:
    """Accept up to 100 generations; each item answers with its job or its own error."""
    results: list[BatchItemResult] = []
    fresh: list[tuple[str, str]] = []
    with connection() as conn:
        for index, raw in enumerate(items):
            try:
                request = GenerateRequest.model_validate(raw)
                template = template_for_generation(tenant_id=principal.tenant_id, template_id=request.template_id)
                job = new_job(template=template, principal=principal, request=request)
                caching = use_cache and request.cache
                row, new = _store(conn, principal=principal, template=template, job=job, caching=caching)
            except ValidationError as exc:
                fields = validation_fields([dict(e) for e in exc.errors()])
                problems = [FieldProblem(**f) for f in fields]
                results.append(_item_error(ValidationFailed(f"item {index} is not valid", problems)))
                continue
            except PromptLabError as exc:
                results.append(_item_error(exc))
                continue
            if new and row.lane == "standard":  # economy jobs wait for the next provider batch
                fresh.append((row.id, row.priority))
            results.append(BatchItemResult(job_id=row.id, status=row.status))
        dispatch_many(conn, jobs=fresh)
    if fresh:
        count("JobsAccepted", len(fresh))
    logger.info("batch accepted", new=len(fresh), items=len(items))
    return GenerateBatchResult(items=results)
