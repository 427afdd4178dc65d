"""Monthly budgets of API keys: a job's worst-case cost is reserved at submit, settled when it ends.

Settling is done by the database (a trigger on the job's status; migration 006), so it happens exactly
once whichever path ends the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from promptlab.core.clock import utc_now
from promptlab.core.errors import BudgetExceeded, ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.money import MILLION
from promptlab.core.money import money_str as usd
from promptlab.db import keys_repo
from promptlab.db.connection import Connection
from promptlab.models.jobs import Job
from promptlab.models.templates import Template
from promptlab.providers.pricing import unit_prices
from promptlab.templates.rendering import render
from promptlab.tenancy.auth import Principal

# Each message carries a few tokens of framing beyond its text.
MESSAGE_OVERHEAD_TOKENS = 8


def input_token_bound(*, system: str | None, prompt: str) -> int:
    """An upper bound on the input tokens: every token of a BPE tokenizer is at least one UTF-8 byte."""
    return len(prompt.encode()) + len((system or "").encode()) + 2 * MESSAGE_OVERHEAD_TOKENS


def worst_case_cost(
    *,
    template: Template,
    values: JsonObject,
    messages: list[dict[str, str]] | None,
    max_tokens: int,
    routes: Sequence[str],
) -> Decimal | None:
    """The most a generation can cost on any of its `provider:model` routes (None when one has no price)."""
    if messages:
        prompt = "\n".join(render(m["content"], values) or "" for m in messages)
    else:
        prompt = render(template.body, values) or ""
    bound = input_token_bound(system=render(template.system, values), prompt=prompt)
    worst = Decimal(0)
    for route in routes:
        provider, _, model = route.partition(":")
        prices = unit_prices(provider, model)
        if prices is None:
            return None
        per_input = max(prices.input, prices.cache_write)
        worst = max(worst, (bound * per_input + max_tokens * prices.output) / MILLION)
    return worst


def month_of_now() -> date:
    """The budget month (UTC) a job submitted now counts against."""
    return utc_now().date().replace(day=1)


def job_worst_case(*, template: Template, job: Job) -> Decimal | None:
    """The most the job can cost on any of its routes."""
    return worst_case_cost(
        template=template,
        values=job.input or {},
        messages=job.messages,
        max_tokens=job.max_tokens,
        routes=[f"{job.provider}:{job.model}", *(job.fallbacks or [])],
    )


@dataclass(frozen=True)
class Reservation:
    """What a job holds of its key's monthly budget (nothing when the key has no budget)."""

    api_key_id: str | None
    amount: Decimal | None = None
    month: date | None = None

    def on(self, job: Job) -> Job:
        """The job carrying this reservation, so settling it later finds it."""
        return replace(job, api_key_id=self.api_key_id, reserved_cost_usd=self.amount, budget_month=self.month)


def reserve(conn: Connection, *, principal: Principal, template: Template, job: Job) -> Reservation:
    """Reserve the job's worst case against the key's budget.

    Raises `BudgetExceeded` (402) naming the budget, its limit, what is spent and reserved.
    """
    limit = principal.monthly_budget_usd
    if limit is None or principal.key_id is None:
        return Reservation(api_key_id=principal.key_id)
    amount = job_worst_case(template=template, job=job)
    if amount is None:
        raise ValidationFailed.single(
            "model", f"model {job.model!r} has no price, so a key with a budget cannot use it: name a priced model"
        )
    month = month_of_now()
    granted, use = keys_repo.reserve(conn, key_id=principal.key_id, month=month, amount=amount, limit=limit)
    if not granted:
        spent, reserved = use.spent_usd, use.reserved_usd
        raise BudgetExceeded(
            f"the monthly budget of key {principal.key_name!r} ({usd(limit)} USD) cannot cover this job's worst case"
            f" of {usd(amount)} USD: {usd(spent)} spent and {usd(reserved)} reserved in {month:%Y-%m}",
            details={
                "budget": {"keyId": principal.key_id, "keyName": principal.key_name, "month": f"{month:%Y-%m}"},
                "limitUSD": usd(limit),
                "spentUSD": usd(spent),
                "reservedUSD": usd(reserved),
                "requestedUSD": usd(amount),
            },
        )
    return Reservation(api_key_id=principal.key_id, amount=amount, month=month)


def release(conn: Connection, *, reservation: Reservation) -> None:
    """Undo a reservation that no stored job carries."""
    if reservation.api_key_id and reservation.amount is not None and reservation.month is not None:
        keys_repo.release(conn, key_id=reservation.api_key_id, month=reservation.month, amount=reservation.amount)
