"""Jobs on the wire and on the queue: the job views, attempts, dead letters, the SQS message."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from promptlab.core.errors import PoisonMessage
from promptlab.models.wire import JobStatus, Money, RequestModel, UtcDatetime, WireModel


class RedriveRequest(RequestModel):
    job_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class RedriveResult(WireModel):
    redriven: list[str]


class DeadLetterPublic(WireModel):
    id: int
    job_id: str | None
    queue: str
    reason: str
    receive_count: int | None
    dead_lettered_at: UtcDatetime
    redriven_at: UtcDatetime | None


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
    error: dict[str, Any] | None = None
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
    params: dict[str, Any] | None = Field(default=None, description="maxTokens, temperature, topP, stop as used.")
    lane: Literal["standard", "economy"] = "standard"
    batch_id: str | None = Field(default=None, description="The provider batch of an economy job.")
    purged_at: UtcDatetime | None = Field(default=None, description="When input and output were purged.")
    warnings: list[str] | None = None
    provider_latency_ms: int | None = None
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


class JobPublic(JobSummary):
    output: str | None = None
    messages: list[dict[str, str]] | None = None
    attempt_history: list[AttemptPublic] | None = None
    notifications: list[NotificationPublic] | None = None


class JobPage(WireModel):
    items: list[JobSummary]
    next_cursor: str | None


class JobMessage(WireModel):
    """The SQS message body: only a pointer to the durable job row."""

    job_id: Annotated[str, Field(min_length=1, max_length=64)]
    v: Literal[1] = 1


def parse_job_message(body: str) -> JobMessage:
    """The job pointer in a message body, or `PoisonMessage`."""
    try:
        return JobMessage.model_validate_json(body)
    except ValidationError as exc:
        raise PoisonMessage(f"not a job message: {exc.errors()[0]['msg']}") from exc
