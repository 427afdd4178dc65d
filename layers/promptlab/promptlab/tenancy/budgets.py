"""Monthly budgets of API keys: a ceiling on every path (spent + reserved <= limit at every moment).

A job's worst case — every call it may still make — is reserved, checked against the limit, when it is
submitted and again before a retry or a redrive runs it again. Settling is done by the database (a trigger
on the job's cost and status; migration 011): each recorded cost is spent out of what the job holds, and
the rest is released when it ends, exactly once whichever path ends it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from promptlab.core.clock import utc_now
from promptlab.core.errors import BudgetExceeded, NotFound, ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.money import MILLION
from promptlab.core.money import money_str as usd
from promptlab.core.settings import get_settings
from promptlab.db import keys_repo, templates_repo
from promptlab.db.connection import Connection
from promptlab.models.jobs import Job
from promptlab.models.templates import Template, TemplateVersion
from promptlab.providers import json_output
from promptlab.providers.pricing import unit_prices
from promptlab.templates.rendering import rendered_length
from promptlab.tenancy.auth import Principal

# Each message carries a few tokens of framing beyond its text.
MESSAGE_OVERHEAD_TOKENS = 8


def input_token_bound(*, texts: Sequence[str | None], values: Mapping[str, str], extra_bytes: int = 0) -> int:
    """An upper bound on the input tokens of a prompt made of these texts (rendered with `values`, measured
    without rendering): every token of a BPE tokenizer is at least one UTF-8 byte."""
    size = sum(rendered_length(text, values, utf8=True) for text in texts)
    return size + extra_bytes + len(texts) * MESSAGE_OVERHEAD_TOKENS


# An image costs at most ~2,500 input tokens at any provider here (each resizes large images); a PDF page
# at most ~3,000 (its text and its picture), a page taking at least 2 KB; a document at most a context window.
IMAGE_TOKEN_BOUND = 2_500
PDF_PAGE_TOKEN_BOUND = 3_000
DOCUMENT_TOKEN_BOUND = 200_000


def attachment_token_bound(messages: list[JsonObject] | None) -> int:
    """An upper bound on the input tokens of the images and PDFs the turns show (one by URL: the most)."""
    total = 0
    for message in messages or ():
        for item in message.get("attachments") or ():
            if item["mediaType"] != "application/pdf":
                total += IMAGE_TOKEN_BOUND
            elif item.get("url"):
                total += DOCUMENT_TOKEN_BOUND
            else:
                pages = max(1, len(item.get("data") or "") * 3 // 4 // 2_048)
                total += min(DOCUMENT_TOKEN_BOUND, PDF_PAGE_TOKEN_BOUND * pages)
    return total


def worst_case_cost(
    *,
    template: Template | TemplateVersion,
    values: Mapping[str, str],
    messages: list[JsonObject] | None,
    max_tokens: int,
    routes: Sequence[str],
    calls: Sequence[int] | None = None,
    response_format: JsonObject | None = None,
    tools: list[JsonObject] | None = None,
) -> Decimal | None:
    """The most a generation can cost over every call it may still make (None when a route has no price).

    `calls[i]` is how many calls route i may still make (1 each when not given). Only an answer is billed,
    and without a response format the first answer ends the job, so the worst case is the dearest route's
    one call; in JSON mode every invalid answer is billed and asked again (with the answer echoed), so the
    worst case adds up every call of every route.
    """
    texts = [template.system, *([m["content"] for m in messages] if messages else [template.body])]
    instruction = len(json_output.instruction(response_format).encode()) if response_format else 0
    tool_bytes = len(json.dumps(tools).encode()) if tools else 0
    calls_bytes = sum(len(json.dumps(m.get("toolCalls") or []).encode()) for m in messages or ())
    first_bound = input_token_bound(
        texts=texts, values=values, extra_bytes=instruction + tool_bytes + calls_bytes
    ) + attachment_token_bound(messages)
    reask_bound = first_bound + json_output.reask_bytes_bound(max_tokens) + 2 * MESSAGE_OVERHEAD_TOKENS
    per_route: list[Decimal] = []
    for index, route in enumerate(routes):
        provider, _, model = route.partition(":")
        prices = unit_prices(provider, model)
        if prices is None:
            return None
        per_input = max(prices.input, prices.cache_write)
        first = (first_bound * per_input + max_tokens * prices.output) / MILLION
        if response_format is None:
            per_route.append(first)
            continue
        reask = (reask_bound * per_input + max_tokens * prices.output) / MILLION
        n = calls[index] if calls is not None else 1
        per_route.append(first + max(n - 1, 0) * reask if n > 0 else Decimal(0))
    if not per_route:
        return Decimal(0)
    return sum(per_route, Decimal(0)) if response_format is not None else max(per_route)


def month_of_now() -> date:
    """The budget month (UTC) a job submitted now counts against."""
    return utc_now().date().replace(day=1)


def job_worst_case(*, template: Template | TemplateVersion, job: Job) -> Decimal | None:
    """The most the job can still cost: every call left on its current route and on each fallback after it."""
    routes = [f"{job.provider}:{job.model}", *(job.fallbacks or [])][job.route_index :]
    fresh = get_settings().max_attempts
    calls = [max(job.max_attempts - job.attempts, 0), *([fresh] * (len(routes) - 1))]
    return worst_case_cost(
        template=template,
        values=job.input or {},
        messages=job.messages,
        max_tokens=job.max_tokens,
        routes=routes,
        calls=calls,
        response_format=job.params.get("responseFormat"),
        tools=job.params.get("tools"),
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


def _grant(
    conn: Connection, *, key_id: str, key_name: str | None, limit: Decimal, amount: Decimal, what: str = "this job"
) -> Reservation:
    """Reserve `amount` when spent + reserved + amount stays within `limit`; else `BudgetExceeded` (402)
    naming the budget, what is spent and reserved, and the shortfall."""
    month = month_of_now()
    granted, use = keys_repo.reserve(conn, key_id=key_id, month=month, amount=amount, limit=limit)
    if not granted:
        spent, reserved = use.spent_usd, use.reserved_usd
        shortfall = spent + reserved + amount - limit
        raise BudgetExceeded(
            f"the monthly budget of key {key_name!r} ({usd(limit)} USD) cannot cover {what}'s worst case"
            f" of {usd(amount)} USD: {usd(spent)} spent and {usd(reserved)} reserved in {month:%Y-%m},"
            f" {usd(shortfall)} USD short",
            details={
                "budget": {"keyId": key_id, "keyName": key_name, "month": f"{month:%Y-%m}"},
                "limitUSD": usd(limit),
                "spentUSD": usd(spent),
                "reservedUSD": usd(reserved),
                "requestedUSD": usd(amount),
                "shortfallUSD": usd(shortfall),
            },
        )
    return Reservation(api_key_id=key_id, amount=amount, month=month)


def _unpriced(model: str) -> ValidationFailed:
    return ValidationFailed.single(
        "model", f"model {model!r} has no price, so a key with a budget cannot use it: name a priced model"
    )


def reserve(conn: Connection, *, principal: Principal, template: Template, job: Job) -> Reservation:
    """Reserve the job's worst case (every call it may make) against the key's budget.

    Raises `BudgetExceeded` (402) naming the budget, its limit, what is spent and reserved.
    """
    limit = principal.monthly_budget_usd
    if limit is None or principal.key_id is None:
        return Reservation(api_key_id=principal.key_id)
    amount = job_worst_case(template=template, job=job)
    if amount is None:
        raise _unpriced(job.model)
    return _grant(conn, key_id=principal.key_id, key_name=principal.key_name, limit=limit, amount=amount)


def reserve_again(conn: Connection, *, job: Job, extra_attempts: int) -> Reservation:
    """Before a failed job runs again (retry, redrive) with `extra_attempts` more calls: reserve their worst
    case against the budget of the key that submitted it; `BudgetExceeded` (402) when it no longer fits."""
    key = keys_repo.key_by_id(conn, key_id=job.api_key_id) if job.api_key_id else None
    if key is None or key.monthly_budget_usd is None:
        return Reservation(api_key_id=job.api_key_id)
    version = templates_repo.get_version(conn, template_id=job.template_id, version=job.template_version)
    if version is None:
        raise NotFound(f"template version {job.template_version} of {job.template_id!r} is gone")
    again = replace(job, max_attempts=job.attempts + extra_attempts)
    amount = job_worst_case(template=version, job=again)
    if amount is None:
        raise _unpriced(job.model)
    return _grant(conn, key_id=key.id, key_name=key.name, limit=key.monthly_budget_usd, amount=amount)


def reserve_total(conn: Connection, *, principal: Principal, amount: Decimal, what: str) -> Reservation:
    """Reserve many jobs' worst cases at once (an experiment's), to be split among them with `part`;
    `BudgetExceeded` (402) naming the shortfall when the key's budget cannot cover all of it."""
    limit = principal.monthly_budget_usd
    if limit is None or principal.key_id is None:
        return Reservation(api_key_id=principal.key_id)
    return _grant(conn, key_id=principal.key_id, key_name=principal.key_name, limit=limit, amount=amount, what=what)


def part(reservation: Reservation, amount: Decimal | None) -> Reservation:
    """The share of a total reservation that one job carries (nothing when the key has no budget)."""
    if reservation.amount is None:
        return reservation
    return replace(reservation, amount=amount)


def worst_case_or_refuse(*, template: Template | TemplateVersion, job: Job, budgeted: bool) -> Decimal | None:
    """The job's worst case; a 422 naming the model when a budgeted key would run an unpriced one."""
    amount = job_worst_case(template=template, job=job)
    if amount is None and budgeted:
        raise _unpriced(job.model)
    return amount


def move_hold(
    conn: Connection, *, key_id: str, month: date, held: Decimal, template: Template, job: Job
) -> Reservation:
    """Give back `held` (reserved earlier for this call, e.g. an experiment's hold for a judge) and reserve
    the job's own worst case instead, in the caller's transaction."""
    keys_repo.release(conn, key_id=key_id, month=month, amount=held)
    key = keys_repo.key_by_id(conn, key_id=key_id)
    if key is None or key.monthly_budget_usd is None:
        return Reservation(api_key_id=key_id)
    amount = worst_case_or_refuse(template=template, job=job, budgeted=True)
    assert amount is not None
    return _grant(conn, key_id=key_id, key_name=key.name, limit=key.monthly_budget_usd, amount=amount)


def release_amount(conn: Connection, *, key_id: str | None, month: date | None, amount: Decimal) -> None:
    """Give back what an experiment still holds when it ends."""
    if key_id and month is not None and amount > 0:
        keys_repo.release(conn, key_id=key_id, month=month, amount=amount)


def release(conn: Connection, *, reservation: Reservation) -> None:
    """Undo a reservation that no stored job carries."""
    if reservation.api_key_id and reservation.amount is not None and reservation.month is not None:
        keys_repo.release(conn, key_id=reservation.api_key_id, month=reservation.month, amount=reservation.amount)
