"""Pydantic models at the edges: the API's wire contract (camelCase) and the queue message."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError
from pydantic.alias_generators import to_camel

from promptlab.clock import rfc3339
from promptlab.errors import PoisonMessage
from promptlab.money import money_str

ProviderName = Literal["anthropic", "openai", "openai-compatible", "fake"]
Priority = Literal["high", "normal", "low", "economy"]
JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]

UtcDatetime = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]
Money = Annotated[Decimal, PlainSerializer(money_str, return_type=str)]
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@-]+$")]
Fallback = Annotated[
    str,
    Field(
        pattern=r"^(anthropic|openai|openai-compatible|fake):[A-Za-z0-9._:/@-]+$",
        max_length=220,
        description="`provider:model`, tried when the one before it fails for good.",
    ),
]
Fallbacks = Annotated[list[Fallback], Field(max_length=5)]
MaxTokens = Annotated[int, Field(ge=1, le=64_000)]
Temperature = Annotated[Decimal, Field(ge=0, le=2, max_digits=6)]
TopP = Annotated[Decimal, Field(ge=0, le=1, max_digits=6)]
StopSequences = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1, max_length=4)]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(WireModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class VariableSpec(RequestModel):
    name: VariableName
    required: bool = True
    default: Annotated[str, Field(max_length=100_000)] | None = None


class TemplateDefaults(RequestModel):
    provider: ProviderName | None = None
    model: ModelName | None = None
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    fallbacks: Fallbacks | None = None


class TemplateCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
    description: Annotated[str, Field(max_length=2_000)] | None = None
    body: Annotated[str, Field(min_length=1, max_length=100_000)]
    system: Annotated[str, Field(max_length=100_000)] | None = None
    variables: Annotated[list[VariableSpec], Field(max_length=100)] | None = None
    variables_schema: dict[str, Any] | None = Field(
        default=None,
        description="A JSON Schema (type object) whose properties are the placeholders: types, enums, lengths,"
        " defaults, descriptions; `required` lists the ones a request must give. Instead of `variables`.",
    )
    defaults: TemplateDefaults = Field(default_factory=TemplateDefaults)
    cache_ttl_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] | None = None
    cache_system_prompt: bool = Field(
        default=False, description="Mark the system prompt cacheable (Anthropic prompt caching)."
    )


class TemplateUpdate(TemplateCreate):
    """`PUT` replaces the whole template and makes a new version."""


class VariablePublic(WireModel):
    name: str
    required: bool
    default: str | None


class TemplateDefaultsPublic(WireModel):
    provider: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: Decimal | None = None
    fallbacks: list[str] | None = None


class VersionContent(WireModel):
    """What a template version holds."""

    version: int
    body: str
    system: str | None
    variables: list[VariablePublic]
    variables_schema: dict[str, Any] | None = None
    defaults: TemplateDefaultsPublic
    cache_ttl_seconds: int
    cache_system_prompt: bool = Field(default=False, validation_alias="cache_system")
    created_at: UtcDatetime


class TemplateVersionPublic(VersionContent):
    template_id: str


class TemplatePublic(VersionContent):
    id: str
    name: str
    description: str | None
    updated_at: UtcDatetime
    archived_at: UtcDatetime | None = None


class TemplatePage(WireModel):
    items: list[TemplatePublic]
    next_cursor: str | None


class TemplateVersionList(WireModel):
    items: list[TemplateVersionPublic]


class ChatMessage(RequestModel):
    """One turn of a conversation; `{{ variables }}` in it are filled from `input` like the template's body."""

    role: Literal["user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=100_000)]


class ResponseFormat(RequestModel):
    """JSON output: the answer must be JSON (`json_object`) or satisfy a JSON Schema (`json_schema`)."""

    type: Literal["json_object", "json_schema"]
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema", description="For `json_schema`.")


TemplateRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=140,
        pattern=r"^[A-Za-z0-9_]+(@[A-Za-z0-9._-]{1,64})?$",
        description="`tpl_…`, `tpl_…@3` (a version) or `tpl_…@production` (a label).",
    ),
]
LabelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9._-]*$")]


class GenerateRequest(RequestModel):
    template_id: TemplateRef
    provider: ProviderName | None = None
    model: ModelName | None = None
    input: str | dict[str, Any] = Field(default_factory=dict)
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    fallbacks: Fallbacks | None = None
    top_p: TopP | None = None
    stop: StopSequences | None = Field(default=None, description="Up to 4 sequences that end the answer.")
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="A conversation sent instead of the template's rendered body (its system prompt still applies);"
        " it starts and ends with a user turn, and turns alternate.",
    )
    response_format: ResponseFormat | None = Field(
        default=None, description="Ask for JSON; the answer is validated, and retried with the error when invalid."
    )
    priority: Priority = "normal"
    cache: bool = True
    expires_at: UtcDatetime | None = Field(
        default=None, description="Deadline: a job not started by then ends `failed` with `expired` (default 24 h)."
    )
    metadata: Annotated[dict[str, str], Field(max_length=50)] | None = None
    callback: (
        Annotated[
            str,
            Field(
                pattern=r"^https?://[^\s]+$",
                max_length=2048,
                description="A URL that receives the finished job as a signed POST (see README, Webhooks).",
            ),
        ]
        | None
    ) = None


class GenerateBatchRequest(RequestModel):
    items: Annotated[
        list[dict[str, Any]],
        Field(min_length=1, max_length=100, description="Up to 100 `POST /generate` bodies; each answers alone."),
    ]


class BatchItemError(WireModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class BatchItemResult(WireModel):
    """Either `jobId` and `status`, or `error`."""

    job_id: str | None = None
    status: str | None = None
    error: BatchItemError | None = None


class GenerateBatchResult(WireModel):
    items: list[BatchItemResult]


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


class DependencyCheck(WireModel):
    status: Literal["ok", "unavailable"]
    latency_ms: float
    error: str | None = None


class HealthPublic(WireModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, DependencyCheck]


class ErrorField(WireModel):
    field: str
    message: str


class ErrorDetail(WireModel):
    code: str
    message: str
    request_id: str | None
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(WireModel):
    error: ErrorDetail


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


UsageGroup = Literal["day", "provider", "model", "template"]


class UsageRow(WireModel):
    """What one group (a day, a provider, a model or a template) used."""

    key: str
    requests: int
    completed: int
    failed: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Money = Field(alias="costUSD")
    saved_usd: Money = Field(alias="savedUSD", description="What cache hits would have cost.")
    batch_saved_usd: Money = Field(alias="batchSavedUSD", description="What the economy lane saved.")
    avg_latency_ms: int | None = Field(description="Mean provider latency of provider-answered jobs.")


class UsageReport(WireModel):
    from_: UtcDatetime = Field(alias="from")
    to: UtcDatetime
    group_by: UsageGroup
    items: list[UsageRow]
    totals: UsageRow


class MoveLabel(RequestModel):
    version: Annotated[int, Field(ge=1)]


class LabelPublic(WireModel):
    label: str
    version: int
    updated_at: UtcDatetime
    updated_by: str | None


class LabelMovePublic(WireModel):
    label: str
    from_version: int | None
    to_version: int
    moved_by: str | None
    moved_at: UtcDatetime


class TemplateLabels(WireModel):
    labels: list[LabelPublic]
    moves: list[LabelMovePublic] = Field(description="Every move, newest first (who, when, from which version).")


class RenderRequest(RequestModel):
    """A dry run of `POST /generate`: the same fields but the template (from the path) and the job options."""

    input: str | dict[str, Any] = Field(default_factory=dict)
    provider: ProviderName | None = None
    model: ModelName | None = None
    max_tokens: MaxTokens | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=100)] | None = None
    version: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Default: the current version.")
    label: LabelName | None = Field(default=None, description="Render the version this label points at.")


class RenderedTurn(WireModel):
    role: str
    content: str


class RenderResult(WireModel):
    template_id: str
    version: int
    provider: str
    model: str
    system: str | None
    messages: list[RenderedTurn]
    input_tokens_estimate: int = Field(description="About 4 characters a token; the provider's count may differ.")
    max_tokens: int
    worst_case_cost_usd: Money | None = Field(
        alias="worstCaseCostUSD", description="Input bounded by its UTF-8 bytes plus maxTokens of output."
    )


class TemplateDiff(WireModel):
    template_id: str
    from_version: int
    to_version: int
    body: list[str] = Field(description="A unified diff of the body, line by line (empty: unchanged).")
    system: list[str]
    changes: dict[str, dict[str, Any]] = Field(description="Other settings that changed: {field: {from, to}}.")


class BatchCounts(WireModel):
    total: int
    succeeded: int
    errored: int
    expired: int
    canceled: int


class BatchPublic(WireModel):
    """A provider batch of the economy lane."""

    id: str
    provider: str
    model: str
    provider_batch_id: str | None
    status: Literal["submitting", "in_progress", "ended", "failed"]
    request_counts: BatchCounts
    error: str | None = None
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None


class BatchPage(WireModel):
    items: list[BatchPublic]
    next_cursor: str | None
