"""The fast path of `POST /generate`: the common, valid request without the framework's per-field validation.

It saves ~0.6 ms on the hot path (a cache hit): the same service call and the same answer as the full
route (`api/routes/generation.py`), with whom it shares the status rule and the `Location` header.
Anything else — bad input, an `Idempotency-Key`, any error — returns None and the full route answers.
"""

from __future__ import annotations

import base64

from promptlab.api.answers import generation_status, job_location
from promptlab.api.pipeline import Event, Prefetch
from promptlab.api.routes.generation import uses_cache
from promptlab.core.errors import PromptLabError
from promptlab.core.json_types import LambdaEvent
from promptlab.infra import result_cache
from promptlab.jobs import accept, requests
from promptlab.models.generation import GenerateRequest
from promptlab.templates import service as template_service
from promptlab.tenancy.auth import Principal


def _fast_request(event: Event) -> tuple[GenerateRequest, dict[str, str]] | None:
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


def prepare_generate(event: Event, principal: Principal) -> Prefetch | None:
    """Before the rate limiter: build the job from the in-process template copy, so its cache key can be
    read in the limiter's Redis round trip. None whenever that would need I/O (no template copy, a callback
    to check) or the request is not the simple case."""
    parsed = _fast_request(event)
    if parsed is None:
        return None
    request, headers = parsed
    if not (uses_cache(headers.get("cache-control")) and request.cache) or request.callback is not None:
        return None
    template = template_service.cached_template(tenant_id=principal.tenant_id, template_id=request.template_id)
    if template is None:
        return None
    job = requests.new_job(template=template, principal=principal, request=request)
    return Prefetch(key=result_cache.key_for(job.input_hash), state=(request, template, job))


def generate_fast(event: Event, principal: Principal, prefetch: Prefetch | None) -> LambdaEvent | None:
    """`POST /generate` for a valid request without an Idempotency-Key; None: let the full route answer."""
    try:
        if prefetch is not None and prefetch.done:
            request, template, job = prefetch.state
            public = accept.accept_job(
                principal=principal,
                request=request,
                template=template,
                job=job,
                prefetched=accept.Prefetched(result_cache.decode(prefetch.value)),
            )
        else:
            parsed = _fast_request(event)
            if parsed is None:
                return None
            request, headers = parsed
            public = accept.accept_generation(
                principal=principal, request=request, use_cache=uses_cache(headers.get("cache-control"))
            )
    except PromptLabError:
        # The full route answers: with the proper error when nothing was written, or, when a store failed after
        # the job was written, with that job (joined in flight) or its result (a free cache hit)
        return None
    headers = {"Content-Type": "application/json", **job_location(public.id)}
    return {
        "statusCode": generation_status(public),
        "isBase64Encoded": False,
        "body": public.model_dump_json(by_alias=True),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
    }
