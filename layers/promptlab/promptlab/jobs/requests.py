"""A generation request made into a job: defaults applied, input bound and checked, hashed (no I/O but the template)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import Conflict, ValidationFailed
from promptlab.core.hashing import input_hash
from promptlab.core.json_schema import check_schema
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import correlation_id
from promptlab.core.settings import get_settings
from promptlab.infra import webhook_targets
from promptlab.jobs.turns import check_attachments, conversation
from promptlab.models.generation import GenerateRequest
from promptlab.models.jobs import Job
from promptlab.models.templates import Template
from promptlab.providers import json_output
from promptlab.providers.registry import BATCH_PROVIDERS, batch_takes, check_available, default_model
from promptlab.templates.rendering import (
    Variable,
    bind_input,
    check_rendered_size,
    placeholder_names,
)
from promptlab.templates.service import variables_of
from promptlab.templates.variable_schema import check_input
from promptlab.tenancy.auth import Principal


@dataclass(frozen=True)
class Resolved:
    """What a request resolves to once defaults are applied."""

    provider: str
    model: str
    params: JsonObject
    bound_input: dict[str, str]
    input_hash: str
    fallbacks: list[str] | None = None
    messages: list[JsonObject] | None = None


def variables_for(template: Template, messages: list[JsonObject] | None) -> list[Variable]:
    """The variables a request must bind: the template's, or, with messages, those the system prompt and the
    messages use (the body is not sent; literal messages are sent as written); the template's defaults apply."""
    declared = variables_of(template)
    if messages is None:
        return declared
    by_name = {v.name: v for v in declared}
    names = placeholder_names(template.system, *(m["content"] for m in messages if not m.get("literal")))
    return [by_name.get(name, Variable(name=name)) for name in names]


def literal_turns(turns: list[JsonObject]) -> list[JsonObject]:
    """Turns sent exactly as written (no placeholders filled), `system` ones joining the system prompt: what an
    OpenAI-style chat request sends. The caller has checked them."""
    return [{**t, "literal": "true"} for t in turns]


def _tools(request: GenerateRequest, defaults: JsonObject) -> JsonObject:
    """The tools (the request's, else the template's) and the choice, as the job's params keep them."""
    tools = [t.model_dump(exclude_none=True) for t in request.tools] if request.tools else defaults.get("tools")
    if not tools:
        if request.tool_choice not in (None, "auto", "none"):
            raise ValidationFailed.single("toolChoice", "there are no tools to choose from")
        return {}
    for index, tool in enumerate(tools):
        check_schema(tool["parameters"], field=f"tools[{index}].parameters")
    names = [t["name"] for t in tools]
    if len(set(names)) != len(names):
        raise ValidationFailed.single("tools", "two tools have the same name")
    choice = request.tool_choice or defaults.get("tool_choice")
    if choice and choice.startswith("function:") and choice.removeprefix("function:") not in names:
        raise ValidationFailed.single("toolChoice", f"no tool is named {choice.removeprefix('function:')!r}")
    return {"tools": tools, **({"toolChoice": choice} if choice else {})}


def resolve(*, template: Template, request: GenerateRequest, literal: list[JsonObject] | None = None) -> Resolved:
    """Apply request → template version → settings defaults and bind the input (`literal`: turns sent as
    written instead of the request's `messages`)."""
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
    params: JsonObject = {"maxTokens": max_tokens}
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
    params.update(_tools(request, defaults))
    if request.seed is not None:
        params["seed"] = request.seed
    messages = conversation(request) if literal is None else literal_turns(literal)
    check_attachments(provider, messages, lambda i: f"messages[{i}]")
    variables = variables_for(template, messages)
    if template.variables_schema and messages is None:
        check_input(template.variables_schema, request.input, variables)
    bound = bind_input(variables, request.input)
    texts = [str(m["content"]) for m in messages] if messages else [template.body]
    check_rendered_size(
        [template.system, *texts],
        bound,
        limit=settings.max_prompt_chars,
        field="input",
        hint="send shorter values (placeholders repeat them)",
    )
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
    *,
    template: Template,
    principal: Principal,
    request: GenerateRequest,
    source_message_id: str | None = None,
    literal: list[JsonObject] | None = None,
) -> Job:
    """Validate a request against its template and build the job (not yet stored); `literal`: see `resolve`."""
    if template.archived_at is not None:
        raise Conflict(
            f"template {request.template_id!r} is archived and takes no new generations",
            details={"templateId": request.template_id},
        )
    resolved = resolve(template=template, request=request, literal=literal)
    if request.priority == "economy" and resolved.provider not in BATCH_PROVIDERS:
        raise ValidationFailed.single(
            "priority", f"provider {resolved.provider!r} has no batch API: the economy lane takes {BATCH_PROVIDERS}"
        )
    if request.priority == "economy" and not batch_takes(resolved.provider, resolved.model):
        raise ValidationFailed.single(
            "priority", f"{resolved.provider}'s batch API does not take model {resolved.model!r} here"
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
        request_id=correlation_id(),
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
