"""Generation routes: `POST /generate` (its fast path is `api/fast_generate.py`) and `/generate/batch`."""

from __future__ import annotations

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header

from promptlab.api.answers import doc, job_location
from promptlab.api.declared import route
from promptlab.api.openapi_docs import GENERATE_EXAMPLE, TEMPLATE_ID
from promptlab.api.resolver import current_principal
from promptlab.jobs import accept
from promptlab.models.generation import GenerateBatchRequest, GenerateBatchResult, GenerateRequest
from promptlab.models.jobs import JobPublic
from promptlab.tenancy import idempotency

router = Router()  # type: ignore[no-untyped-call]


def _tenant() -> str:
    return current_principal().tenant_id


IdempotencyKey = Annotated[
    str | None,
    Header(alias="idempotency-key", description="Same key + same body → the first answer again, for 24 h."),
]
CacheControl = Annotated[str | None, Header(alias="cache-control", description="`no-cache` skips the result cache.")]


def uses_cache(cache_control: str | None) -> bool:
    """False when the client asked to skip the result cache (`Cache-Control: no-cache`)."""
    return not (cache_control and "no-cache" in cache_control.lower())


def _answer(answer: idempotency.Answer, headers: dict[str, str] | None = None) -> Response[str]:
    extra = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    return Response(
        status_code=answer.status,
        content_type="application/json",
        body=answer.body,
        headers={**(headers or {}), **extra},
    )


@route(
    router,
    "POST",
    "/generate",
    scope="generate",
    event="Generate",
    summary="Generate",
    description="Submits one generation. 202 with the queued job, or 200 with a finished one when the same input was"
    " answered within the template's cache TTL (`cacheHit`, `savedCostUSD`). The worst case is reserved from"
    " the key's budget (402 when it does not fit). Send `Idempotency-Key` to make retries safe.",
    responses=doc(
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
    request=GENERATE_EXAMPLE,
    errors={409: ("conflict", "Idempotency-Key 'order-42' was used with another body")},
    also=(402, 413),
    tags=["generation"],
)
def generate(
    body: GenerateRequest, idempotency_key: IdempotencyKey = None, cache_control: CacheControl = None
) -> Response[str]:
    def compute() -> idempotency.Answer:
        job = accept.accept_generation(principal=current_principal(), request=body, use_cache=uses_cache(cache_control))
        status = 202 if job.status in {"queued", "processing"} else 200
        return idempotency.Answer(status=status, body=job.model_dump_json(by_alias=True))

    answer = idempotency.run(
        tenant_id=_tenant(),
        key=idempotency_key,
        request=body.model_dump(mode="json", by_alias=True) if idempotency_key else None,
        compute=compute,
    )
    job_id = json.loads(answer.body)["id"]
    return _answer(answer, job_location(job_id))


@route(
    router,
    "POST",
    "/generate/batch",
    scope="generate",
    event="GenerateBatch",
    summary="Generate many",
    description="Up to 100 `POST /generate` bodies; each item answers alone (a job, or its own error), in order.",
    responses=doc(202, GenerateBatchResult, "Each item: its job or its error", 400, 409, 415, 422),
    request={
        "items": [GENERATE_EXAMPLE, {"templateId": TEMPLATE_ID, "input": {"topic": "Rust"}, "priority": "economy"}]
    },
    errors={409: ("conflict", "Idempotency-Key 'nightly-7' was used with another body")},
    tags=["generation"],
)
def generate_batch(
    body: GenerateBatchRequest, idempotency_key: IdempotencyKey = None, cache_control: CacheControl = None
) -> Response[str]:
    def compute() -> idempotency.Answer:
        use_cache = uses_cache(cache_control)
        result = accept.accept_batch(principal=current_principal(), items=body.items, use_cache=use_cache)
        return idempotency.Answer(status=202, body=result.model_dump_json(by_alias=True, exclude_none=True))

    answer = idempotency.run(
        tenant_id=_tenant(), key=idempotency_key, request=body.model_dump(mode="json", by_alias=True), compute=compute
    )
    return _answer(answer)
