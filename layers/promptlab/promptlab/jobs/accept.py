"""The accept path of `POST /generate`: resolve → validate → hash → persist → enqueue."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import Conflict, FieldProblem, PromptLabError, ValidationFailed
from promptlab.core.hashing import input_hash
from promptlab.core.observability import count, logger
from promptlab.core.settings import get_settings
from promptlab.core.tokens import prompt_tokens
from promptlab.core.validation import validation_fields
from promptlab.db import jobs_repo
from promptlab.db.connection import Connection, connection
from promptlab.infra import result_cache, webhook_targets
from promptlab.jobs.lifecycle import dispatch, dispatch_many, job_public
from promptlab.models.generation import BatchItemError, BatchItemResult, GenerateBatchResult, GenerateRequest
from promptlab.models.jobs import CachedResult, Job, JobPublic
from promptlab.models.templates import RenderedTurn, RenderRequest, RenderResult, Template
from promptlab.providers import json_output
from promptlab.providers.registry import BATCH_PROVIDERS, check_available, default_model
from promptlab.templates.rendering import Variable, bind_input, check_placeholders, placeholder_names, render
from promptlab.templates.service import template_for_generation, variables_of
from promptlab.templates.variable_schema import check_input
from promptlab.tenancy import budgets
from promptlab.tenancy.auth import Principal


@dataclass(frozen=True)
class Resolved:
    """What a request resolves to once defaults are applied."""

    provider: str
    model: str
    params: dict[str, Any]
    bound_input: dict[str, str]
    input_hash: str
    fallbacks: list[str] | None = None
    messages: list[dict[str, str]] | None = None


def conversation(request: GenerateRequest) -> list[dict[str, str]] | None:
    """The request's chat turns, checked: they start and end with the user and alternate (422 otherwise)."""
    if not request.messages:
        return None
    turns = [{"role": m.role, "content": m.content} for m in request.messages]
    for index, turn in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if turn["role"] != expected:
            raise ValidationFailed.single(
                f"messages[{index}].role", f"must be {expected!r}: turns alternate, user first"
            )
        problems = check_placeholders(f"messages[{index}].content", turn["content"])
        if problems:
            raise ValidationFailed("a message has a malformed placeholder", problems)
    if turns[-1]["role"] != "user":
        raise ValidationFailed.single(f"messages[{len(turns) - 1}].role", "the last turn must be the user's")
    return turns


def variables_for(template: Template, messages: list[dict[str, str]] | None) -> list[Variable]:
    """The variables a request must bind: the template's, or, with messages, those the system prompt and the
    messages use (the body is not sent); the template's defaults still apply."""
    declared = variables_of(template)
    if messages is None:
        return declared
    by_name = {v.name: v for v in declared}
    names = placeholder_names(template.system, *(m["content"] for m in messages))
    return [by_name.get(name, Variable(name=name)) for name in names]


def resolve(*, template: Template, request: GenerateRequest) -> Resolved:
    """Apply request → template version → settings defaults and bind the input."""
    settings = get_settings()
    defaults = template.defaults
    provider = request.provider or defaults.get("provider") or settings.default_provider
    model = request.model
    if model is None and defaults.get("provider", provider) == provider:
        model = defaults.get("model")
    if model is None and provider == settings.default_provider:
        model = settings.default_model
    model = model or default_model(provider)
    if model is None:
        raise ValidationFailed.single("model", f"provider {provider!r} has no default model: name one")
    check_available(provider, model)
    max_tokens = request.max_tokens or defaults.get("max_tokens") or settings.default_max_tokens
    temperature = request.temperature
    if temperature is None and defaults.get("temperature") is not None:
        temperature = Decimal(defaults["temperature"])
    params: dict[str, Any] = {"maxTokens": max_tokens}
    if temperature is not None:
        params["temperature"] = temperature
    if request.top_p is not None:
        params["topP"] = request.top_p
    if request.stop:
        params["stop"] = list(request.stop)
    fallbacks = request.fallbacks if request.fallbacks is not None else defaults.get("fallbacks")
    for index, entry in enumerate(fallbacks or []):
        fallback_provider, _, fallback_model = entry.partition(":")
        try:
            check_available(fallback_provider, fallback_model)
        except ValidationFailed as exc:
            raise ValidationFailed.single(f"fallbacks[{index}]", exc.message) from exc
    if request.response_format is not None:
        params["responseFormat"] = json_output.checked_format(request.response_format)
    messages = conversation(request)
    variables = variables_for(template, messages)
    if template.variables_schema and messages is None:
        check_input(template.variables_schema, request.input, variables)
    bound = bind_input(variables, request.input)
    digest = input_hash(
        template_id=template.id,
        version=template.version,
        provider=provider,
        model=model,
        params=params,
        bound_input=bound,
        messages=messages,
    )
    return Resolved(
        provider=provider,
        model=model,
        params=params,
        bound_input=bound,
        input_hash=digest,
        fallbacks=list(fallbacks) if fallbacks else None,
        messages=messages,
    )


MAX_DEADLINE = timedelta(days=30)


def _deadline(request: GenerateRequest) -> datetime:
    """The request's `expiresAt` (in the future, within 30 days), or now + the default job TTL."""
    now = utc_now()
    if request.expires_at is None:
        return now + timedelta(seconds=get_settings().job_ttl_seconds)
    deadline = request.expires_at if request.expires_at.tzinfo else request.expires_at.replace(tzinfo=UTC)
    if deadline <= now:
        raise ValidationFailed.single("expiresAt", "must be in the future")
    if deadline > now + MAX_DEADLINE:
        raise ValidationFailed.single("expiresAt", f"must be within {MAX_DEADLINE.days} days")
    return deadline


def new_job(
    *, template: Template, principal: Principal, request: GenerateRequest, source_message_id: str | None = None
) -> Job:
    """Validate a request against its template and build the job (not yet stored)."""
    if template.archived_at is not None:
        raise Conflict(
            f"template {request.template_id!r} is archived and takes no new generations",
            details={"templateId": request.template_id},
        )
    resolved = resolve(template=template, request=request)
    if request.priority == "economy" and resolved.provider not in BATCH_PROVIDERS:
        raise ValidationFailed.single(
            "priority", f"provider {resolved.provider!r} has no batch API: the economy lane takes {BATCH_PROVIDERS}"
        )
    if request.callback is not None:
        try:
            webhook_targets.vet(request.callback)
        except webhook_targets.TargetRefused as exc:
            raise ValidationFailed.single("callback", str(exc)) from exc
    settings = get_settings()
    return Job(
        id=ids.job_id(),
        tenant_id=principal.tenant_id,
        api_key_id=principal.key_id,
        request_id=logger.get_correlation_id(),
        template_id=template.id,
        template_version=template.version,
        provider=resolved.provider,
        model=resolved.model,
        params={k: str(v) if isinstance(v, Decimal) else v for k, v in resolved.params.items()},
        input=resolved.bound_input,
        messages=resolved.messages,
        input_hash=resolved.input_hash,
        status="queued",
        priority=request.priority,
        lane="economy" if request.priority == "economy" else "standard",
        max_attempts=settings.max_attempts,
        metadata=request.metadata,
        callback_url=request.callback,
        fallbacks=resolved.fallbacks,
        source_message_id=source_message_id,
        expires_at=_deadline(request),
    )


def _cache_hit_job(job: Job, result: CachedResult) -> Job:
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
            row = _cache_hit_job(job, result)
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


def preview(*, principal: Principal, template_id: str, request: RenderRequest) -> RenderResult:
    """`POST /templates/{id}/render`: what a generation would send and cost at most, without a job."""
    selector = request.version if request.version is not None else request.label
    ref = f"{template_id}@{selector}" if selector is not None else template_id
    template = template_for_generation(tenant_id=principal.tenant_id, template_id=ref)
    generate = GenerateRequest.model_validate(
        {
            "template_id": ref,
            "input": request.input,
            "provider": request.provider,
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": request.messages,
        }
    )
    resolved = resolve(template=template, request=generate)
    values = resolved.bound_input
    system = render(template.system, values)
    turns = resolved.messages or [{"role": "user", "content": template.body}]
    rendered = [{"role": t["role"], "content": render(t["content"], values) or ""} for t in turns]
    return RenderResult(
        template_id=template.id,
        version=template.version,
        provider=resolved.provider,
        model=resolved.model,
        system=system,
        messages=[RenderedTurn(**t) for t in rendered],
        input_tokens_estimate=prompt_tokens(system, [t["content"] for t in rendered]),
        max_tokens=int(resolved.params["maxTokens"]),
        worst_case_cost_usd=budgets.worst_case_cost(
            template=template,
            values=values,
            messages=resolved.messages,
            max_tokens=int(resolved.params["maxTokens"]),
            routes=[f"{resolved.provider}:{resolved.model}", *(resolved.fallbacks or [])],
        ),
    )


def _item_error(exc: PromptLabError) -> BatchItemResult:
    return BatchItemResult(error=BatchItemError(code=exc.code, message=exc.message, details=exc.details))


def accept_batch(*, principal: Principal, items: list[dict[str, Any]], use_cache: bool = True) -> GenerateBatchResult:
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
