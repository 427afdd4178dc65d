"""An OpenAI-style chat made into an ordinary job: the model name routed, the turns checked, accepted, waited for.

There is no second pipeline: the chat becomes a `GenerateRequest` on a template (the one its `model` names, or
the tenant's chat template) with its turns sent as written, and goes through the same accept path as
`POST /generate` (limits, budget reservation, result cache, single flight, queue, worker, usage).
Errors name the OpenAI parameter at fault (`messages[2].content`, `max_tokens`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from promptlab.core.errors import NotFound, ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.settings import get_settings
from promptlab.jobs import accept, lifecycle
from promptlab.jobs.openai_turns import tools_of, turns_of
from promptlab.jobs.requests import new_job
from promptlab.models.generation import GenerateRequest
from promptlab.models.jobs import Job, JobPublic
from promptlab.models.openai_chat import ChatRequest
from promptlab.models.templates import Template
from promptlab.providers.registry import PROVIDERS, is_configured
from promptlab.templates.service import (
    CHAT_TEMPLATE,
    cached_template,
    chat_template,
    template_by_name,
    template_for_generation,
)
from promptlab.tenancy import idempotency
from promptlab.tenancy.auth import Principal

# Bare model names of the two big APIs, as their own SDKs are used with them.
BARE_MODEL_PREFIXES = (("gpt-", "openai"), ("chatgpt-", "openai"), ("o1", "openai"), ("o3", "openai"),
                       ("o4", "openai"), ("claude-", "anthropic"))  # fmt: skip
TERMINAL = frozenset({"completed", "failed", "cancelled"})
# PromptLab's field names (as `GenerateRequest` and the job checks report them) → the chat's parameters.
_PARAMETER = {"maxTokens": "max_tokens", "max_tokens": "max_tokens", "topP": "top_p", "top_p": "top_p",
              "input": "promptlab.variables", "provider": "model", "templateId": "model", "template_id": "model",
              "responseFormat": "response_format", "response_format": "response_format",
              "toolChoice": "tool_choice", "tool_choice": "tool_choice"}  # fmt: skip


@dataclass(frozen=True)
class ChatTarget:
    """What a chat's `model` names: a template (with its own defaults), or a provider and model on the tenant's
    chat template."""

    template: Template
    provider: str | None = None
    model: str | None = None


def model_not_found(name: str, why: str) -> NotFound:
    return NotFound(f"The model `{name}` does not exist or you do not have access to it: {why}",
                    details={"param": "model", "openaiCode": "model_not_found"})  # fmt: skip


def provider_model(name: str) -> tuple[str, str] | None:
    """(provider, model) when the name routes to a provider: `<provider>/<model>`, `gpt-…`, `claude-…`."""
    provider, slash, model = name.partition("/")
    if not slash:
        provider = next((p for prefix, p in BARE_MODEL_PREFIXES if name.startswith(prefix)), "")
        model = name
    return (provider, model) if provider in PROVIDERS and model else None


def cached_target(*, tenant_id: str, name: str) -> ChatTarget | None:
    """`route_model` from this process's template copies alone (no I/O); None when that is not enough."""
    routed = provider_model(name)
    if routed is not None:
        template = cached_template(tenant_id=tenant_id, template_id=CHAT_TEMPLATE)
        return ChatTarget(template, *routed) if template is not None and is_configured(routed[0]) else None
    template = cached_template(tenant_id=tenant_id, template_id=name) if name.startswith("tpl_") else None
    return ChatTarget(template) if template is not None else None


def route_model(*, tenant_id: str, name: str) -> ChatTarget:
    """`tpl_…[@label]` or a template's name → that template; `<provider>/<model>` (`bedrock/…`, `fake/…`);
    `gpt-…`/`o…` → OpenAI and `claude-…` → Anthropic."""
    if name.startswith("tpl_"):
        return ChatTarget(_template(tenant_id, name, name))
    routed = provider_model(name)
    if routed is not None:
        if not is_configured(routed[0]):
            raise model_not_found(name, f"provider {routed[0]!r} is not configured in this deployment")
        return ChatTarget(chat_template(tenant_id=tenant_id), *routed)
    base, _, label = name.partition("@")
    named = template_by_name(tenant_id=tenant_id, name=base)
    if named is None:
        raise model_not_found(name, "name a provider's model (`claude-…`, `gpt-…`, `<provider>/<model>`) or a template")
    return ChatTarget(_template(tenant_id, f"{named.id}@{label}" if label else named.id, name))


def _template(tenant_id: str, ref: str, name: str) -> Template:
    try:
        return template_for_generation(tenant_id=tenant_id, template_id=ref)
    except NotFound as exc:
        raise model_not_found(name, exc.message) from None


def _max_tokens(chat: ChatRequest) -> int | None:
    if chat.max_tokens is not None and chat.max_completion_tokens not in (None, chat.max_tokens):
        raise ValidationFailed.single("max_completion_tokens", "give `max_completion_tokens` or `max_tokens`, not both")
    return chat.max_completion_tokens if chat.max_completion_tokens is not None else chat.max_tokens


def _response_format(chat: ChatRequest) -> dict[str, Any] | None:
    wanted = chat.response_format
    if wanted is None or wanted.type == "text":
        return None
    if wanted.type == "json_object":
        return {"type": "json_object"}
    if wanted.json_schema is None or wanted.json_schema.schema_ is None:
        raise ValidationFailed.single("response_format.json_schema.schema", "a `json_schema` format needs its schema")
    return {"type": "json_schema", "schema": wanted.json_schema.schema_}


def generation_of(chat: ChatRequest, target: ChatTarget) -> tuple[GenerateRequest, list[JsonObject] | None]:
    """The `POST /generate` request a chat is, and its turns sent as written (None: the template's body)."""
    if chat.n not in (None, 1):
        raise ValidationFailed.single("n", "only n=1 is supported: send n requests for n answers")
    extras = chat.promptlab
    turns = turns_of(chat)
    templated = target.provider is None
    if not templated and not any(t["role"] != "system" for t in turns):
        raise ValidationFailed.single("messages", "send at least one user message")
    if templated and turns and not any(t["role"] != "system" for t in turns):
        raise ValidationFailed.single(
            "messages", "with a template, send no messages (its body is the prompt) or a conversation"
        )
    if extras and extras.variables and not templated:
        raise ValidationFailed.single("promptlab.variables", "variables go with a template model (`tpl_…@label`)")
    tools, tool_choice = tools_of(chat)
    metadata = dict(chat.metadata or {})
    if chat.user is not None:
        metadata["user"] = chat.user
    fields: dict[str, Any] = {
        "template_id": f"{target.template.id}@{target.template.version}",
        "provider": target.provider, "model": target.model,
        "input": (extras.variables if extras and extras.variables else {}),
        "max_tokens": _max_tokens(chat),
        "temperature": None if chat.temperature is None else Decimal(str(chat.temperature)),
        "top_p": None if chat.top_p is None else Decimal(str(chat.top_p)),
        "stop": [chat.stop] if isinstance(chat.stop, str) else chat.stop,
        "response_format": _response_format(chat),
        "priority": (extras.priority if extras and extras.priority else "normal"),
        "cache": extras.cache if extras and extras.cache is not None else True,
        "metadata": metadata or None,
        "tools": tools, "tool_choice": tool_choice, "seed": chat.seed,
    }  # fmt: skip
    try:
        request = GenerateRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValidationFailed.single(parameter(".".join(str(p) for p in first["loc"])), first["msg"]) from None
    return request, (turns or None)


def parameter(field: str) -> str:
    """A PromptLab field name (`maxTokens`, `input.topic`) as the chat's parameter (`max_tokens`, …)."""
    head, dot, rest = field.partition(".")
    mapped = _PARAMETER.get(head, head)
    return f"{mapped}{dot}{rest}" if dot and mapped != "model" else mapped


def chat_job(*, principal: Principal, chat: ChatRequest, target: ChatTarget) -> tuple[GenerateRequest, Job]:
    """The job a chat is (not stored), errors naming the chat's parameters."""
    request, turns = generation_of(chat, target)
    try:
        return request, new_job(template=target.template, principal=principal, request=request, literal=turns)
    except ValidationFailed as exc:
        fields = [{"field": parameter(f.field), "message": f.message} for f in exc.fields]
        raise ValidationFailed.single(fields[0]["field"], fields[0]["message"]) if fields else exc from None


def accept_chat(*, principal: Principal, chat: ChatRequest, use_cache: bool, idempotency_key: str | None) -> JobPublic:
    """The chat as a job: new, joined in flight, or answered from the cache."""
    target = route_model(tenant_id=principal.tenant_id, name=chat.model)
    request, job = chat_job(principal=principal, chat=chat, target=target)

    def compute() -> idempotency.Answer:
        public = accept.accept_job(
            principal=principal, request=request, template=target.template, job=job, use_cache=use_cache
        )
        return idempotency.Answer(status=200, body=public.model_dump_json(by_alias=True))

    answer = idempotency.run(
        tenant_id=principal.tenant_id, key=idempotency_key,
        request=chat.model_dump(mode="json", exclude_none=True), compute=compute,
    )  # fmt: skip
    return JobPublic.model_validate(json.loads(answer.body))


def wait_for(*, principal: Principal, job: JobPublic) -> JobPublic:
    """The job once it ended, or as it stands when the chat's wait (`PROMPTLAB_CHAT_WAIT_SECONDS`) is over."""
    if job.status in TERMINAL:
        return job
    settings = get_settings()
    row = lifecycle.wait_for_end(
        tenant_id=principal.tenant_id, job_id=job.id, seconds=settings.chat_wait_seconds,
        waiter=f"chat:{principal.key_id or principal.tenant_id}", limit=settings.max_chat_waits_per_key,
    )  # fmt: skip
    return lifecycle.job_public(row)
