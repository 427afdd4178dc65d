"""Every HTTP route: parse, call one service function, shape the answer."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from promptlab.api import health
from promptlab.api.resolver import Prefetch, PromptLabResolver, register_error_handlers
from promptlab.core.errors import PreconditionFailed, PromptLabError
from promptlab.infra import result_cache
from promptlab.jobs import accept, batches, dead_letters, lifecycle
from promptlab.models.batches import BatchPage, BatchPublic
from promptlab.models.generation import GenerateBatchRequest, GenerateBatchResult, GenerateRequest
from promptlab.models.health import HealthPublic
from promptlab.models.jobs import JobPage, JobPublic, RedriveRequest, RedriveResult
from promptlab.models.templates import (
    MoveLabel,
    RenderRequest,
    RenderResult,
    TemplateCreate,
    TemplateDiff,
    TemplateLabels,
    TemplatePage,
    TemplatePublic,
    TemplateUpdate,
    TemplateVersionList,
)
from promptlab.models.usage import UsageGroup, UsageReport
from promptlab.models.wire import ErrorBody, JobStatus, Priority
from promptlab.templates import service as template_service
from promptlab.tenancy import idempotency, usage

API_TITLE = "PromptLab API"
API_VERSION = "0.1.0"

app = PromptLabResolver(enable_validation=True)
register_error_handlers(app)

TemplateId = Annotated[str, Path(min_length=1, max_length=64, description="A template id (`tpl_…`).")]
LabelPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9._-]*$", description="A label name.")
]
VersionPath = Annotated[int, Path(ge=1, le=1_000_000, description="A version number.")]
JobId = Annotated[str, Path(min_length=1, max_length=64, description="A job id (`job_…`).")]
IfMatch = Annotated[
    str | None,
    Header(alias="if-match", description="The version you last read (the `ETag`); 412 when it is stale."),
]


def _doc(status: int, model: type[BaseModel] | None, description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses: the success model and the error statuses a route can answer."""
    ok: OpenAPIResponse = {"description": description}
    if model is not None:
        ok["content"] = {"application/json": {"model": model}}
    documented: dict[int, OpenAPIResponse] = {status: ok}
    for error in errors:
        documented[error] = {"description": "Error", "content": {"application/json": {"model": ErrorBody}}}
    return documented


def _json(status: int, model: BaseModel, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=model.model_dump_json(by_alias=True),
        headers={"X-Request-Id": app.request_id or "", **(headers or {})},
    )


def _tenant() -> str:
    return app.principal.tenant_id


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed(f"If-Match {if_match!r} is not a version this API issued")
    return int(tag)


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@app.post(
    "/templates",
    responses=_doc(201, TemplatePublic, "Created at version 1", 400, 409, 415, 422),
    tags=["templates"],
)
def create_template(body: TemplateCreate) -> Response[str]:
    template = template_service.create_template(tenant_id=_tenant(), request=body)
    return _json(201, template, {**_etag(template.version), "Location": f"/templates/{template.id}"})


@app.get("/templates", responses=_doc(200, TemplatePage, "A page of live templates", 422), tags=["templates"])
def list_templates(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the name or description.")] = None,
) -> Response[str]:
    return _json(200, template_service.list_templates(tenant_id=_tenant(), limit=limit, cursor=cursor, q=q))


@app.get("/templates/<id>", responses=_doc(200, TemplatePublic, "The template", 404), tags=["templates"])
def get_template(id: TemplateId) -> Response[str]:
    template = template_service.get_template(tenant_id=_tenant(), template_id=id)
    return _json(200, template, _etag(template.version))


@app.put(
    "/templates/<id>",
    responses=_doc(200, TemplatePublic, "The new version", 400, 404, 409, 412, 415, 422),
    tags=["templates"],
)
def update_template(id: TemplateId, body: TemplateUpdate, if_match: IfMatch = None) -> Response[str]:
    template = template_service.update_template(
        tenant_id=_tenant(), template_id=id, request=body, expected_version=_expected_version(if_match)
    )
    return _json(200, template, _etag(template.version))


@app.delete("/templates/<id>", responses=_doc(204, None, "Archived", 404, 412), tags=["templates"])
def archive_template(id: TemplateId, if_match: IfMatch = None) -> Response[str]:
    template_service.archive_template(tenant_id=_tenant(), template_id=id, expected_version=_expected_version(if_match))
    return Response(status_code=204, body="", headers={"X-Request-Id": app.request_id or ""})


@app.post(
    "/templates/<id>/restore",
    responses=_doc(200, TemplatePublic, "Live again (a template that was not archived is returned as is)", 404, 409),
    tags=["templates"],
)
def restore_template(id: TemplateId) -> Response[str]:
    template = template_service.restore_template(tenant_id=_tenant(), template_id=id)
    return _json(200, template, _etag(template.version))


@app.post(
    "/templates/<id>/render",
    responses=_doc(200, RenderResult, "The prompts a generation would send, tokens and worst-case cost", 404, 422),
    tags=["templates"],
)
def render_template(id: TemplateId, body: RenderRequest) -> Response[str]:
    return _json(200, accept.preview(principal=app.principal, template_id=id, request=body))


@app.get(
    "/templates/<id>/labels", responses=_doc(200, TemplateLabels, "Labels and their moves", 404), tags=["templates"]
)
def list_labels(id: TemplateId) -> Response[str]:
    return _json(200, template_service.list_labels(tenant_id=_tenant(), template_id=id))


@app.put(
    "/templates/<id>/labels/<label>",
    responses=_doc(200, TemplateLabels, "The label points at the version (the move is recorded)", 404, 422),
    tags=["templates"],
)
def move_label(id: TemplateId, label: LabelPath, body: MoveLabel) -> Response[str]:
    principal = app.principal
    moved_by = principal.key_name or principal.key_id or "anonymous"
    labels = template_service.move_label(
        tenant_id=_tenant(), template_id=id, label=label, version=body.version, moved_by=moved_by
    )
    return _json(200, labels)


@app.get(
    "/templates/<id>/versions/<a>/diff/<b>",
    responses=_doc(200, TemplateDiff, "What changed from version a to version b", 404, 422),
    tags=["templates"],
)
def diff_versions(id: TemplateId, a: VersionPath, b: VersionPath) -> Response[str]:
    return _json(200, template_service.diff_versions(tenant_id=_tenant(), template_id=id, a=a, b=b))


@app.get(
    "/templates/<id>/versions",
    responses=_doc(200, TemplateVersionList, "Every version, newest first", 404),
    tags=["templates"],
)
def list_versions(id: TemplateId) -> Response[str]:
    return _json(200, template_service.list_versions(tenant_id=_tenant(), template_id=id))


IdempotencyKey = Annotated[
    str | None,
    Header(alias="idempotency-key", description="Same key + same body → the first answer again, for 24 h."),
]
CacheControl = Annotated[str | None, Header(alias="cache-control", description="`no-cache` skips the result cache.")]


def _uses_cache(cache_control: str | None) -> bool:
    return not (cache_control and "no-cache" in cache_control.lower())


def _answer(answer: idempotency.Answer, headers: dict[str, str] | None = None) -> Response[str]:
    extra = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return Response(
        status_code=answer.status,
        content_type="application/json",
        body=answer.body,
        headers={"X-Request-Id": app.request_id or "", **(headers or {}), **extra},
    )


@app.post(
    "/generate",
    responses=_doc(
        202,
        JobPublic,
        "Accepted: the job is queued (200 when answered from the cache)",
        400,
        404,
        409,
        415,
        422,
        429,
        503,
    ),
    tags=["generation"],
)
def generate(
    body: GenerateRequest, idempotency_key: IdempotencyKey = None, cache_control: CacheControl = None
) -> Response[str]:
    def compute() -> idempotency.Answer:
        job = accept.accept_generation(principal=app.principal, request=body, use_cache=_uses_cache(cache_control))
        status = 202 if job.status in {"queued", "processing"} else 200
        return idempotency.Answer(status=status, body=job.model_dump_json(by_alias=True))

    answer = idempotency.run(
        tenant_id=_tenant(),
        key=idempotency_key,
        request=body.model_dump(mode="json", by_alias=True) if idempotency_key else None,
        compute=compute,
    )
    job_id = json.loads(answer.body)["id"]
    return _answer(answer, {"Location": f"/jobs/{job_id}"})


def _fast_request(event: dict[str, Any]) -> tuple[GenerateRequest, dict[str, str]] | None:
    """A valid `POST /generate` body without an Idempotency-Key, with the headers; None for anything else."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if "idempotency-key" in headers or not event.get("body"):
        return None
    raw = event["body"]
    try:
        text = base64.b64decode(raw).decode("utf-8") if event.get("isBase64Encoded") else raw
        return GenerateRequest.model_validate_json(text), headers
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None


def prepare_generate(event: dict[str, Any]) -> Prefetch | None:
    """Before the rate limiter: build the job from the in-process template copy, so its cache key can be
    read in the limiter's Redis round trip. None whenever that would need I/O (no template copy, a callback
    to check) or the request is not the simple case."""
    parsed = _fast_request(event)
    if parsed is None:
        return None
    request, headers = parsed
    if not (_uses_cache(headers.get("cache-control")) and request.cache) or request.callback is not None:
        return None
    principal = app.principal
    template = template_service.cached_template(tenant_id=principal.tenant_id, template_id=request.template_id)
    if template is None:
        return None
    job = accept.new_job(template=template, principal=principal, request=request)
    return Prefetch(key=result_cache.key_for(job.input_hash), state=(request, template, job))


@app.fast_path("POST", "/generate", prepare=prepare_generate)
def generate_fast(event: dict[str, Any], request_id: str | None, prefetch: Prefetch | None) -> dict[str, Any] | None:
    """`POST /generate` for a valid request without an Idempotency-Key: the same service, minus the
    framework's per-field validation (~0.6 ms). Anything else (bad input, an error) takes the full route."""
    try:
        if prefetch is not None and prefetch.done:
            request, template, job_row = prefetch.state
            job = accept.accept_job(
                principal=app.principal,
                request=request,
                template=template,
                job=job_row,
                prefetched=accept.Prefetched(result_cache.decode(prefetch.value)),
            )
        else:
            parsed = _fast_request(event)
            if parsed is None:
                return None
            request, headers = parsed
            job = accept.accept_generation(
                principal=app.principal, request=request, use_cache=_uses_cache(headers.get("cache-control"))
            )
    except PromptLabError:
        return None  # nothing was written: the full route answers with the proper error
    return {
        "statusCode": 202 if job.status in {"queued", "processing"} else 200,
        "isBase64Encoded": False,
        "body": job.model_dump_json(by_alias=True),
        "multiValueHeaders": {
            "X-Request-Id": [request_id or ""],
            "Location": [f"/jobs/{job.id}"],
            "Content-Type": ["application/json"],
        },
    }


@app.post(
    "/generate/batch",
    responses=_doc(202, GenerateBatchResult, "Each item: its job or its error", 400, 409, 415, 422),
    tags=["generation"],
)
def generate_batch(
    body: GenerateBatchRequest, idempotency_key: IdempotencyKey = None, cache_control: CacheControl = None
) -> Response[str]:
    def compute() -> idempotency.Answer:
        use_cache = _uses_cache(cache_control)
        result = accept.accept_batch(principal=app.principal, items=body.items, use_cache=use_cache)
        return idempotency.Answer(status=202, body=result.model_dump_json(by_alias=True, exclude_none=True))

    answer = idempotency.run(
        tenant_id=_tenant(), key=idempotency_key, request=body.model_dump(mode="json", by_alias=True), compute=compute
    )
    return _answer(answer)


@app.get("/jobs/<id>", responses=_doc(200, JobPublic, "The job with its attempt history", 404), tags=["jobs"])
def get_job(
    id: JobId,
    wait: Annotated[
        float, Query(ge=0, le=20, description="Seconds to hold the answer until the job ends (long poll; ≤ 20).")
    ] = 0,
) -> Response[str]:
    return _json(200, lifecycle.get_job(tenant_id=_tenant(), job_id=id, wait_seconds=wait))


@app.delete(
    "/jobs/<id>",
    responses=_doc(204, None, "Input and output purged (Postgres and the result cache); accounting kept", 404, 409),
    tags=["jobs"],
)
def purge_job(id: JobId) -> Response[str]:
    lifecycle.purge_job(tenant_id=_tenant(), job_id=id)
    return Response(status_code=204, body="", headers={"X-Request-Id": app.request_id or ""})


@app.get("/jobs", responses=_doc(200, JobPage, "A page of jobs, newest first", 422), tags=["jobs"])
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
    return _json(200, page)


@app.post("/jobs/<id>/cancel", responses=_doc(200, JobPublic, "Cancelled", 404, 409), tags=["jobs"])
def cancel_job(id: JobId) -> Response[str]:
    return _json(200, lifecycle.cancel_job(tenant_id=_tenant(), job_id=id))


@app.post("/jobs/<id>/retry", responses=_doc(200, JobPublic, "Queued again", 404, 409), tags=["jobs"])
def retry_job(id: JobId) -> Response[str]:
    return _json(200, lifecycle.retry_job(tenant_id=_tenant(), job_id=id))


@app.post("/dlq/redrive", responses=_doc(200, RedriveResult, "The jobs sent again", 400, 415, 422), tags=["jobs"])
def redrive_dead_letters(body: RedriveRequest) -> Response[str]:
    return _json(200, dead_letters.redrive(tenant_id=_tenant(), job_id=body.job_id, limit=body.limit))


BatchId = Annotated[str, Path(min_length=1, max_length=64, description="A provider batch id (`bat_…`).")]


@app.get("/batches", responses=_doc(200, BatchPage, "The economy lane's provider batches", 422), tags=["jobs"])
def list_batches(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response[str]:
    return _json(200, batches.list_batches(tenant_id=_tenant(), limit=limit, cursor=cursor))


@app.get("/batches/<id>", responses=_doc(200, BatchPublic, "One provider batch with its counts", 404), tags=["jobs"])
def get_batch(id: BatchId) -> Response[str]:
    return _json(200, batches.get_batch(tenant_id=_tenant(), batch_id=id))


@app.get("/usage", responses=_doc(200, UsageReport, "Usage and cost per group, with totals", 422), tags=["usage"])
def get_usage(
    from_: Annotated[
        datetime | None, Query(alias="from", description="RFC 3339 or a date, inclusive; default: this month's start")
    ] = None,
    to: Annotated[datetime | None, Query(description="RFC 3339 or a date, exclusive; default: now")] = None,
    group_by: Annotated[UsageGroup, Query(alias="groupBy")] = "day",
) -> Response[str]:
    return _json(200, usage.usage_report(tenant_id=_tenant(), start=from_, end=to, group_by=group_by))


@app.get("/health", responses=_doc(200, HealthPublic, "Every dependency answers", 503), tags=["operations"])
def get_health() -> Response[str]:
    report = health.check_health()
    return _json(200 if report.status == "ok" else 503, report)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of this API."""
    document: dict[str, Any] = app.get_openapi_schema(title=API_TITLE, version=API_VERSION).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return document


@app.get("/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type="application/json",
        body=app.get_openapi_json_schema(title=API_TITLE, version=API_VERSION),
        headers={"X-Request-Id": app.request_id or ""},
    )
