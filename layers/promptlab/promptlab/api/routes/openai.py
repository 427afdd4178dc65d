"""The OpenAI-compatible door: `POST /v1/chat/completions` and `GET /v1/models` over PromptLab's jobs.

A chat is an ordinary job (`jobs/chat.py`); these routes shape its answer as OpenAI's SDKs read it
(`api/openai_door.py`), and every error under `/v1/` comes out in OpenAI's shape.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from promptlab.api import openai_door
from promptlab.api.answers import doc
from promptlab.api.declared import route
from promptlab.api.resolver import current_principal
from promptlab.api.routes.generation import CacheControl, IdempotencyKey, uses_cache
from promptlab.jobs import chat, openai_answers
from promptlab.models.openai_chat import ChatCompletion, ModelCard, ModelList
from promptlab.providers.registry import PROVIDERS, is_configured, known_models

router = Router()  # type: ignore[no-untyped-call]

_CHAT_EXAMPLE = {
    "model": "claude-haiku-4-5",
    "messages": [{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": "What is SQS?"}],
    "max_tokens": 200,
}


@route(
    router,
    "POST",
    "/v1/chat/completions",
    scope="generate",
    event="OpenAIChatCompletions",
    summary="Chat completion (OpenAI-compatible)",
    description="OpenAI's Chat Completions API over PromptLab's jobs: point an OpenAI SDK at `…/v1` with a"
    " PromptLab key. `model` routes by name (`gpt-…`/`o…` → OpenAI, `claude-…` → Anthropic,"
    " `<provider>/<model>` for any configured one, `tpl_…@label` or a template's name for a template, whose"
    " variables go in `promptlab.variables`). The call is a job: limits, budget, cache (`x-promptlab-cache`),"
    " `Idempotency-Key` and usage apply; the answer carries `x-promptlab-job-id`. A job still running after"
    " `PROMPTLAB_CHAT_WAIT_SECONDS` answers 504 with its id. `stream: true` answers Server-Sent Events in"
    " OpenAI's chunk format (all chunks at once). Errors are OpenAI's: `{error: {message, type, param, code}}`.",
    responses=doc(200, ChatCompletion, "The answer (or its events with `stream: true`)", 400, 404, 409, 429, 503),
    request=_CHAT_EXAMPLE,
    tags=["openai"],
)
def chat_completions(idempotency_key: IdempotencyKey = None, cache_control: CacheControl = None) -> Response[str]:
    request = openai_answers.parse_chat(router.current_event.json_body)
    principal = current_principal()
    accepted = chat.accept_chat(
        principal=principal, chat=request, use_cache=uses_cache(cache_control), idempotency_key=idempotency_key
    )
    return openai_door.chat_answer(request, chat.wait_for(principal=principal, job=accepted))


@route(
    router,
    "GET",
    "/v1/models",
    scope="read",
    event="OpenAIModels",
    summary="List models (OpenAI-compatible)",
    description="The models this stack can reach, named as `POST /v1/chat/completions` takes them: each"
    " configured provider's allowed models, else its priced ones.",
    responses=doc(200, ModelList, "The models", 429),
    tags=["openai"],
)
def list_models() -> Response[str]:
    cards = [
        ModelCard(id=model_id(provider, model), owned_by=provider)
        for provider in PROVIDERS
        if is_configured(provider)
        for model in known_models(provider)
    ]
    return Response(status_code=200, content_type="application/json", body=ModelList(data=cards).model_dump_json())


def model_id(provider: str, model: str) -> str:
    """The name that routes to this provider's model: bare where the name alone says the provider."""
    bare = next((p for prefix, p in chat.BARE_MODEL_PREFIXES if model.startswith(prefix)), None)
    return model if bare == provider else f"{provider}/{model}"
