"""`POST /templates/{id}/render`: what a generation would send and cost at most, without making a job."""

from __future__ import annotations

from promptlab.core.tokens import prompt_tokens
from promptlab.jobs.requests import resolve
from promptlab.models.generation import GenerateRequest
from promptlab.models.templates import RenderedTurn, RenderRequest, RenderResult
from promptlab.templates.rendering import render
from promptlab.templates.service import template_for_generation
from promptlab.tenancy import budgets
from promptlab.tenancy.auth import Principal


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
            tools=resolved.params.get("tools"),
        ),
    )
