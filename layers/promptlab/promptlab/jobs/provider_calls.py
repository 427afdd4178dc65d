"""What a job sends to its provider and what the answer costs: shared by the worker and the economy lane."""

from __future__ import annotations

from decimal import Decimal

from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.models.jobs import Answer, Job
from promptlab.models.templates import TemplateVersion
from promptlab.providers import json_output
from promptlab.providers.base import Attachment, GenerationCall, Message, ProviderResult, Tool, ToolCall
from promptlab.providers.pricing import cost_usd, unit_prices
from promptlab.templates.rendering import render


def provider_timeout(max_tokens: int) -> float:
    """min(base + 0.05 s per output token, 240 s): long answers get longer."""
    return min(get_settings().provider_timeout_seconds + 0.05 * max_tokens, 240.0)


def lease_seconds(max_tokens: int) -> float:
    """How long a claim holds the job: the provider timeout plus a margin."""
    return provider_timeout(max_tokens) + get_settings().lease_margin_seconds


def conversation(job: Job, version: TemplateVersion) -> list[Message]:
    """The turns sent: the rendered body, or the job's chat messages; after an invalid JSON answer, that
    answer and a request to correct it."""
    values = job.input or {}
    if job.messages:
        turns = [
            Message(
                role=m["role"],
                content=m["content"] if m.get("literal") else render(m["content"], values) or "",
                attachments=tuple(
                    Attachment(media_type=a["mediaType"], data=a.get("data"), url=a.get("url"))
                    for a in m.get("attachments") or ()
                ),
                tool_calls=tuple(ToolCall(**c) for c in m.get("toolCalls") or ()),
                tool_call_id=m.get("toolCallId"),
            )
            for m in job.messages
            if m["role"] != "system"
        ]
    else:
        turns = [Message(role="user", content=render(version.body, values) or "")]
    error = job.error or {}
    if error.get("code") == "invalid_output" and error.get("output"):
        turns += [
            Message(role="assistant", content=error["output"]),
            Message(role="user", content=json_output.correction(error["message"])),
        ]
    return turns


def system_prompt(job: Job, version: TemplateVersion) -> str | None:
    """The template's system prompt, then the job's own `system` turns (an OpenAI-style chat's)."""
    parts = [
        render(version.system, job.input or {}),
        *(m["content"] for m in job.messages or [] if m["role"] == "system"),
    ]
    return "\n\n".join(p for p in parts if p) or None


def build_call(job: Job, version: TemplateVersion) -> tuple[str, str, GenerationCall]:
    """(provider, model, call) for the job's current route: what the worker or a provider batch sends."""
    provider, model = job.route.current
    params = job.params
    max_tokens = job.max_tokens
    temperature, top_p = params.get("temperature"), params.get("topP")
    call = GenerationCall(
        model=model,
        system=system_prompt(job, version),
        messages=conversation(job, version),
        max_tokens=max_tokens,
        temperature=None if temperature is None else Decimal(temperature),
        timeout_seconds=provider_timeout(max_tokens),
        cache_system=version.cache_system,
        top_p=None if top_p is None else Decimal(top_p),
        stop=tuple(params.get("stop") or ()),
        response_format=params.get("responseFormat"),
        tools=tuple(
            Tool(name=t["name"], parameters=t["parameters"], description=t.get("description"))
            for t in params.get("tools") or ()
        ),
        tool_choice=params.get("toolChoice"),
        seed=params.get("seed"),
    )
    return provider, model, call


def spend(job: Job, result: ProviderResult, latency_ms: int | None, *, batch: bool = False) -> Answer:
    """What the answer cost (at batch prices for the economy lane), added to what earlier attempts of this
    job spent (invalid JSON answers)."""
    provider, model = job.route.current
    prices = unit_prices(provider, result.model, batch=batch) or unit_prices(provider, model, batch=batch)
    if prices is None:
        logger.warning("no price for model; cost left null", provider=provider, model=result.model)
    usage = result.usage
    warnings = [] if prices else [f"no price known for {provider}/{result.model}: the cost is unknown"]
    if not result.text and not result.tool_calls:
        warnings.append(f"the provider returned an empty answer (finish reason {result.finish_reason})")
    elif result.truncated:
        warnings.append(f"the answer was cut at maxTokens (finish reason {result.finish_reason})")
    cost = cost_usd(usage, prices) + (job.estimated_cost_usd or 0) if prices else None
    return Answer(
        output=result.text.replace("\x00", ""),  # Postgres text cannot hold NUL
        finish_reason=result.finish_reason,
        truncated=result.truncated or not (result.text or result.tool_calls),
        input_tokens=usage.input_tokens + (job.input_tokens or 0),
        output_tokens=usage.output_tokens + (job.output_tokens or 0),
        cache_read_tokens=usage.cache_read_tokens + (job.cache_read_tokens or 0),
        cache_write_tokens=usage.cache_write_tokens + (job.cache_write_tokens or 0),
        total_tokens=usage.total_tokens + (job.total_tokens or 0),
        estimated_cost_usd=cost,
        unit_prices=prices.snapshot() if prices else None,
        answered_by=f"{provider}/{result.model}",
        provider_latency_ms=latency_ms,
        warnings=warnings,
        tool_calls=[c.to_json() for c in result.tool_calls] or None,
    )
