"""Jobs on the wire and on the queue: the job views, attempts, dead letters, the SQS message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from promptlab.core.errors import PoisonMessage
from promptlab.core.json_types import JsonObject
from promptlab.models.wire import JobStatus, Money, UtcDatetime, WireModel


class JobError(WireModel):
    code: str
    message: str
    retryable: bool = False
    provider_status: int | None = None
    retry_after_seconds: float | None = None
    rate_limit: dict[str, str] | None = None


class AttemptPublic(WireModel):
    n: int
    started_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    outcome: str
    error: JsonObject | None = None
    provider_request_id: str | None = None


class JobSummary(WireModel):
    """A job as lists show it: everything but the output and the attempt history."""

    id: str
    job_id: str
    status: JobStatus
    template_id: str
    template_version: int
    provider: str
    model: str
    priority: str
    input: dict[str, str] | None
    finish_reason: str | None = None
    truncated: bool | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    total_tokens: int | None = None
    estimated_cost_usd: Money | None = Field(default=None, alias="estimatedCostUSD")
    saved_cost_usd: Money | None = Field(default=None, alias="savedCostUSD")
    cache_hit: bool = False
    attempts: int
    max_attempts: int
    error: JobError | None = None
    metadata: dict[str, str] | None = None
    callback_url: str | None = None
    fallbacks: list[str] | None = None
    answered_by: str | None = None
    params: JsonObject | None = Field(default=None, description="maxTokens, temperature, topP, stop as used.")
    lane: Literal["standard", "economy"] = "standard"
    batch_id: str | None = Field(default=None, description="The provider batch of an economy job.")
    purged_at: UtcDatetime | None = Field(default=None, description="When input and output were purged.")
    warnings: list[str] | None = None
    provider_latency_ms: int | None = None
    experiment_id: str | None = Field(default=None, description="The experiment that made this job, if any.")
    created_at: UtcDatetime
    enqueued_at: UtcDatetime | None = None
    started_at: UtcDatetime | None = None
    completed_at: UtcDatetime | None = None
    expires_at: UtcDatetime
    updated_at: UtcDatetime


class NotificationPublic(WireModel):
    channel: str
    event: str
    attempt: int
    status_code: int | None = None
    error: str | None = None
    delivered: bool
    created_at: UtcDatetime


class ToolCallPublic(WireModel):
    """A call the model asked for: PromptLab never runs it; send its result back as a `tool` turn."""

    id: str
    name: str
    arguments: str = Field(description="The call's input as JSON text.")


class JobPublic(JobSummary):
    output: str | None = None
    tool_calls: list[ToolCallPublic] | None = Field(default=None, description="The tools the model asked to call.")
    messages: list[JsonObject] | None = None
    attempt_history: list[AttemptPublic] | None = None
    notifications: list[NotificationPublic] | None = None


class JobPage(WireModel):
    items: list[JobSummary]
    next_cursor: str | None


class Handback(WireModel):
    """What a worker that lost a store under a record tells the next delivery of the same job."""

    holder: Annotated[str, Field(max_length=64)] | None = None  # the claim it made, if it may have made one
    called: bool = False  # it called the provider under that claim (the attempt may have been billed)
    waits: Annotated[int, Field(ge=0, le=10_000)] = 0  # how often the job came back for a store (the backoff)


class JobMessage(WireModel):
    """The SQS message body: a pointer to the durable job row (and, after a store fault, its handback)."""

    job_id: Annotated[str, Field(min_length=1, max_length=64)]
    v: Literal[1] = 1
    handback: Handback | None = None

    def to_body(self) -> str:
        """The message body as JSON (`{"jobId": …, "v": 1}` for a plain message)."""
        return self.model_dump_json(by_alias=True, exclude_none=True)


def parse_job_message(body: str) -> JobMessage:
    """The job pointer in a message body, or `PoisonMessage`."""
    try:
        return JobMessage.model_validate_json(body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a job message: {exc.errors()[0]['msg']}") from exc


@dataclass(frozen=True, slots=True)
class Job:
    """A row of `jobs`, typed: built by the repository, never indexed by column name.

    JSON columns (`params`, `input`, `error`, …) stay dicts inside it. A new job is built with the required
    fields; the repository fills the rest when it stores it.
    """

    id: str
    tenant_id: str
    template_id: str
    template_version: int
    provider: str
    model: str
    params: JsonObject
    input_hash: str
    expires_at: datetime
    input: JsonObject | None = None
    status: JobStatus = "queued"
    priority: str = "normal"
    attempts: int = 0
    max_attempts: int = 3
    error: JsonObject | None = None
    output: str | None = None
    finish_reason: str | None = None
    truncated: bool | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    total_tokens: int | None = None
    estimated_cost_usd: Decimal | None = None
    unit_prices: JsonObject | None = None
    cache_hit: bool = False
    saved_cost_usd: Decimal | None = None
    idempotency_key: str | None = None
    answered_by: str | None = None
    metadata: JsonObject | None = None
    provider_latency_ms: int | None = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    lease_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    source_message_id: str | None = None
    callback_url: str | None = None
    single_flight: bool = False
    warnings: list[str] | None = None
    fallbacks: list[str] | None = None
    route_index: int = 0
    api_key_id: str | None = None
    reserved_cost_usd: Decimal | None = None
    budget_month: date | None = None
    request_id: str | None = None
    purged_at: datetime | None = None
    messages: list[JsonObject] | None = None
    lane: str = "standard"
    batch_id: str | None = None
    batch_requeues: int = 0
    throttles: int = 0
    experiment_id: str | None = None
    experiment_variant: int | None = None
    experiment_row: int | None = None
    experiment_scorer: str | None = None
    send_claimed_at: datetime | None = None
    holder: str | None = None
    tool_calls: list[JsonObject] | None = None
    message_due_at: datetime | None = None
    openai_batch_id: str | None = None
    custom_id: str | None = None
    batch_line: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        """The job of a `SELECT * FROM jobs` row."""
        return cls(**row)

    def as_row(self) -> JsonObject:
        """The job's columns by name (what the wire views are validated from)."""
        return {name: getattr(self, name) for name in self.__slots__}

    @property
    def max_tokens(self) -> int:
        """The job's output budget in tokens."""
        return int(self.params["maxTokens"])

    @property
    def route(self) -> JobRoute:
        """Where the job's next call goes."""
        return JobRoute(
            status=self.status,
            provider=self.provider,
            model=self.model,
            fallbacks=self.fallbacks,
            route_index=self.route_index,
            max_tokens=self.max_tokens,
        )


@dataclass(frozen=True, slots=True)
class JobRoute:
    """The job's own provider and model, its fallbacks, and which of them is being tried."""

    status: JobStatus
    provider: str
    model: str
    fallbacks: list[str] | None
    route_index: int
    max_tokens: int

    @property
    def current(self) -> tuple[str, str]:
        """(provider, model) being tried: the job's own, or the fallback `route_index` points at."""
        routes = [(self.provider, self.model)]
        for entry in self.fallbacks or []:
            provider, _, model = entry.partition(":")
            routes.append((provider, model))
        return routes[min(self.route_index, len(routes) - 1)]

    @property
    def has_next(self) -> bool:
        """True when a fallback is left after the current route."""
        return self.route_index < len(self.fallbacks or [])


@dataclass(frozen=True, slots=True)
class Answer:
    """What a provider's answer fills on its job (one call, or one request of a provider batch).

    Tokens and cost include what earlier attempts of the job spent (invalid JSON answers are billed too).
    """

    output: str
    finish_reason: str | None
    truncated: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    estimated_cost_usd: Decimal | None
    unit_prices: JsonObject | None
    answered_by: str
    provider_latency_ms: int | None
    warnings: list[str]
    tool_calls: list[JsonObject] | None = None


@dataclass(frozen=True, slots=True)
class CachedResult:
    """What the result cache keeps of a completed job: enough to answer the same input again for free."""

    job_id: str
    output: str | None
    finish_reason: str | None
    truncated: bool | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    total_tokens: int | None
    estimated_cost_usd: Decimal | None
    answered_by: str | None
    tool_calls: list[JsonObject] | None = None

    @classmethod
    def of(cls, job: Job) -> CachedResult:
        """The cache entry of a completed job."""
        return cls(
            job_id=job.id,
            output=job.output,
            finish_reason=job.finish_reason,
            truncated=job.truncated,
            input_tokens=job.input_tokens,
            output_tokens=job.output_tokens,
            cache_read_tokens=job.cache_read_tokens,
            cache_write_tokens=job.cache_write_tokens,
            total_tokens=job.total_tokens,
            estimated_cost_usd=job.estimated_cost_usd,
            answered_by=job.answered_by,
            tool_calls=job.tool_calls,
        )

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> CachedResult:
        """The entry as stored (money as a decimal string); `TypeError`/`KeyError` when it is not one."""
        cost = value["estimated_cost_usd"]
        return cls(**{**value, "estimated_cost_usd": None if cost is None else Decimal(cost)})

    def to_json(self) -> JsonObject:
        """The entry as stored: money as a decimal string."""
        cost = self.estimated_cost_usd
        return {
            **{f: getattr(self, f) for f in self.__slots__},
            "estimated_cost_usd": None if cost is None else str(cost),
        }


def job_error(
    *, code: str, message: str, retryable: bool, provider_status: int | None = None, **extra: Any
) -> JsonObject:
    """A job's `error` column in the one shape `JobError` reads back (`attempt`, `output`, … may follow)."""
    return {"code": code, "message": message, "retryable": retryable, "providerStatus": provider_status, **extra}
