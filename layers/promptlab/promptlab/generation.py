"""The accept path of `POST /generate`: resolve → validate → hash → persist → enqueue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from promptlab import ids
from promptlab.clock import utc_now
from promptlab.db import jobs_repo
from promptlab.db.connection import connection
from promptlab.errors import Conflict, FieldProblem, PromptLabError, ValidationFailed
from promptlab.hashing import input_hash
from promptlab.jobs import dispatch, dispatch_many, job_public
from promptlab.models import BatchItemError, BatchItemResult, GenerateBatchResult, GenerateRequest, JobPublic
from promptlab.observability import logger
from promptlab.providers import check_available
from promptlab.providers.pricing import default_model
from promptlab.settings import get_settings
from promptlab.template_service import get_template_row, variables_of
from promptlab.templates import bind_input
from promptlab.validation import validation_fields


@dataclass(frozen=True)
class Resolved:
    """What a request resolves to once defaults are applied."""

    provider: str
    model: str
    params: dict[str, Any]
    bound_input: dict[str, str]
    input_hash: str


def resolve(*, template: dict[str, Any], request: GenerateRequest) -> Resolved:
    """Apply request → template version → settings defaults and bind the input."""
    settings = get_settings()
    defaults = template["defaults"]
    provider = request.provider or defaults.get("provider") or settings.default_provider
    check_available(provider)
    model = request.model
    if model is None and defaults.get("provider", provider) == provider:
        model = defaults.get("model")
    if model is None and provider == settings.default_provider:
        model = settings.default_model
    model = model or default_model(provider)
    if model is None:
        raise ValidationFailed.single("model", f"provider {provider!r} has no default model: name one")
    max_tokens = request.max_tokens or defaults.get("max_tokens") or settings.default_max_tokens
    temperature = request.temperature
    if temperature is None and defaults.get("temperature") is not None:
        temperature = Decimal(defaults["temperature"])
    params: dict[str, Any] = {"maxTokens": max_tokens}
    if temperature is not None:
        params["temperature"] = temperature
    bound = bind_input(variables_of(template), request.input)
    digest = input_hash(
        template_id=template["id"],
        version=template["version"],
        provider=provider,
        model=model,
        params=params,
        bound_input=bound,
    )
    return Resolved(provider=provider, model=model, params=params, bound_input=bound, input_hash=digest)


def new_job(*, tenant_id: str, request: GenerateRequest, source_message_id: str | None = None) -> dict[str, Any]:
    """Validate a request against its template and build the job row (not yet stored)."""
    template = get_template_row(tenant_id=tenant_id, template_id=request.template_id)
    if template["archived_at"] is not None:
        raise Conflict(
            f"template {request.template_id!r} is archived and takes no new generations",
            details={"templateId": request.template_id},
        )
    resolved = resolve(template=template, request=request)
    settings = get_settings()
    return {
        "id": ids.job_id(),
        "tenant_id": tenant_id,
        "template_id": template["id"],
        "template_version": template["version"],
        "provider": resolved.provider,
        "model": resolved.model,
        "params": {k: str(v) if isinstance(v, Decimal) else v for k, v in resolved.params.items()},
        "input": resolved.bound_input,
        "input_hash": resolved.input_hash,
        "status": "queued",
        "priority": request.priority,
        "max_attempts": settings.max_attempts,
        "metadata": request.metadata,
        "callback_url": request.callback,
        "source_message_id": source_message_id,
        "expires_at": utc_now() + timedelta(seconds=settings.job_ttl_seconds),
    }


def accept_generation(*, tenant_id: str, request: GenerateRequest, source_message_id: str | None = None) -> JobPublic:
    """Persist the job, then send its message; a failed send leaves it for the sweeper."""
    job = new_job(tenant_id=tenant_id, request=request, source_message_id=source_message_id)
    with connection() as conn:
        row = jobs_repo.insert_job(conn, job)
        if row["id"] != job["id"]:
            return job_public(row)  # a redelivered intake message: the job exists already
        if dispatch(conn, job_id=row["id"], priority=request.priority):
            row = {**row, "enqueued_at": utc_now()}
    logger.info("job accepted", job_id=row["id"], template_id=row["template_id"], provider=row["provider"])
    return job_public(row)


def _item_error(exc: PromptLabError) -> BatchItemResult:
    return BatchItemResult(error=BatchItemError(code=exc.code, message=exc.message, details=exc.details))


def accept_batch(*, tenant_id: str, items: list[dict[str, Any]]) -> GenerateBatchResult:
    """Accept up to 100 generations; each item answers with its job or its own error."""
    results: list[BatchItemResult] = []
    accepted: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        try:
            request = GenerateRequest.model_validate(raw)
            job = new_job(tenant_id=tenant_id, request=request)
        except ValidationError as exc:
            fields = validation_fields([dict(e) for e in exc.errors()])
            results.append(
                _item_error(ValidationFailed(f"item {index} is not valid", [FieldProblem(**f) for f in fields]))
            )
            continue
        except PromptLabError as exc:
            results.append(_item_error(exc))
            continue
        accepted.append(job)
        results.append(BatchItemResult(job_id=job["id"], status="queued"))
    with connection() as conn:
        for job in accepted:
            jobs_repo.insert_job(conn, job)
        dispatch_many(conn, jobs=[(j["id"], j["priority"]) for j in accepted])
    logger.info("batch accepted", accepted=len(accepted), rejected=len(items) - len(accepted))
    return GenerateBatchResult(items=results)
