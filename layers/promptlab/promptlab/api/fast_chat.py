"""The fast path of `POST /v1/chat/completions`: a valid chat whose template this process already holds.

Like `POST /generate`'s (`api/fast_generate.py`), it builds the job before the rate limiter, so the result
cache is read in the limiter's Redis round trip: a repeated chat is answered with no other Redis call. The
job, the wait and the answer are the full route's (`jobs/chat.py`, `api/openai_door.py`). Anything else — an
`Idempotency-Key`, `Cache-Control: no-cache`, a template not held here, any error before the job is stored —
returns None and the full route answers.
"""

from __future__ import annotations

import base64

from promptlab.api import openai_door
from promptlab.api.errors import proxy_error
from promptlab.api.pipeline import Event, Prefetch
from promptlab.api.routes.generation import uses_cache
from promptlab.core.errors import PromptLabError
from promptlab.core.json_types import LambdaEvent
from promptlab.infra import result_cache
from promptlab.jobs import accept, chat
from promptlab.models.openai_chat import ChatRequest
from promptlab.tenancy.auth import Principal


def prepare_chat(event: Event, principal: Principal) -> Prefetch | None:
    """Before the rate limiter: the chat's job from this process's template copies, so its cache key can be
    read in the limiter's round trip. None whenever that would need I/O or the request is not the simple case."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if "idempotency-key" in headers or not uses_cache(headers.get("cache-control")) or not event.get("body"):
        return None
    raw = event["body"]
    text = base64.b64decode(raw).decode("utf-8") if event.get("isBase64Encoded") else raw
    request = ChatRequest.model_validate_json(text)
    if request.promptlab is not None and request.promptlab.cache is False:
        return None
    target = chat.cached_target(tenant_id=principal.tenant_id, name=request.model)
    if target is None:
        return None
    generation, job = chat.chat_job(principal=principal, chat=request, target=target)
    return Prefetch(key=result_cache.key_for(job.input_hash), state=(request, generation, target.template, job))


def chat_fast(_event: Event, principal: Principal, prefetch: Prefetch | None) -> LambdaEvent | None:
    """The chat answered from the prepared job; None (nothing written): let the full route answer."""
    if prefetch is None or not prefetch.done:
        return None
    request, generation, template, job = prefetch.state
    try:
        public = accept.accept_job(
            principal=principal, request=generation, template=template, job=job,
            prefetched=accept.Prefetched(result_cache.decode(prefetch.value)),
        )  # fmt: skip
    except PromptLabError:
        return None  # refused before anything was stored: the full route answers with the proper error
    try:
        return openai_door.proxy_answer(
            openai_door.chat_answer(request, chat.wait_for(principal=principal, job=public))
        )
    except PromptLabError as exc:  # the job is stored: answer here, never run the route a second time
        return proxy_error(exc, None)
