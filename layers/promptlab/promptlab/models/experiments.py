"""Experiments on the wire: variants × dataset rows run as ordinary jobs, scored, compared, promoted."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, model_validator
from pydantic.alias_generators import to_camel

from promptlab.core.json_types import JsonObject
from promptlab.models.wire import (
    LabelName,
    MaxTokens,
    ModelName,
    Money,
    Priority,
    ProviderName,
    RequestModel,
    Temperature,
    TemplateRef,
    UtcDatetime,
    WireModel,
)

MAX_VARIANTS = 10
MAX_SCORERS = 10
ScorerName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
ExperimentStatus = Literal["running", "completed", "cancelled"]


class VariantParams(RequestModel):
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None


class VariantSpec(RequestModel):
    """One way of answering: a template version (or label), and optionally another provider or model."""

    template: TemplateRef
    provider: ProviderName | None = None
    model: ModelName | None = None
    params: VariantParams | None = None


class _Scorer(RequestModel):
    name: ScorerName | None = Field(default=None, description="Default: the scorer's type.")


class ExactScorer(_Scorer):
    """1 when the output equals `expected` (trimmed; JSON values compared as JSON), else 0."""

    type: Literal["exact"]
    ignore_case: bool = False


class ContainsScorer(_Scorer):
    """1 when the output contains `expected` (a list of strings: the share of them it contains)."""

    type: Literal["contains"]
    ignore_case: bool = True


class RegexScorer(_Scorer):
    """1 when the pattern (RE2 syntax) matches somewhere in the output, else 0."""

    type: Literal["regex"]
    pattern: Annotated[str, Field(min_length=1, max_length=1_000)]


class JsonSchemaScorer(_Scorer):
    """1 when the output is JSON that satisfies the schema, else 0."""

    type: Literal["json_schema"]
    json_schema: JsonObject = Field(alias="schema")


class LengthScorer(_Scorer):
    """1 when the output's length (characters or words) is within the bounds, else 0."""

    type: Literal["length"]
    min: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    max: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    unit: Literal["chars", "words"] = "chars"

    @model_validator(mode="after")
    def _bounds(self) -> LengthScorer:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("`min` is larger than `max`")
        return self


class JudgeScorer(_Scorer):
    """A template of yours that receives `input` (the row's input as JSON), `expected` and `output`, and
    answers `{"score": 0..1, "reason": "…"}` in JSON mode; its calls are jobs, billed and reported."""

    type: Literal["judge"]
    template: TemplateRef
    provider: ProviderName | None = None
    model: ModelName | None = None


Scorer = Annotated[
    ExactScorer | ContainsScorer | RegexScorer | JsonSchemaScorer | LengthScorer | JudgeScorer,
    Field(discriminator="type"),
]


_SCORER: TypeAdapter[Scorer] = TypeAdapter(Scorer)


@dataclass(frozen=True)
class StoredScorer:
    """A scorer as an experiment keeps it: its typed settings (named), and for a judge the template version it
    resolved to and what one of its calls can cost at most. Stored flat, in the wire's camelCase."""

    settings: Scorer
    template_ref: str | None = None  # a judge's template as `tpl_…@version`
    worst_case_usd: Decimal | None = None  # a judge's bound for one output

    @property
    def name(self) -> str:
        return self.settings.name or self.settings.type

    @property
    def judge(self) -> JudgeScorer | None:
        return self.settings if isinstance(self.settings, JudgeScorer) else None

    @classmethod
    def from_stored(cls, stored: JsonObject) -> StoredScorer:
        settings = {k: v for k, v in stored.items() if k not in {"templateRef", "worstCaseUSD"}}
        bound = stored.get("worstCaseUSD")
        return cls(
            _SCORER.validate_python(settings), stored.get("templateRef"), None if bound is None else Decimal(bound)
        )

    def public(self) -> JsonObject:
        """What the API shows of it: the settings, the name, a judge's resolved template."""
        shown: JsonObject = {
            **self.settings.model_dump(mode="json", by_alias=True, exclude_none=True),
            "name": self.name,
        }
        if self.template_ref is not None:
            shown["templateRef"] = self.template_ref
        return shown

    def stored(self) -> JsonObject:
        kept = self.public()
        if self.worst_case_usd is not None:
            kept["worstCaseUSD"] = str(self.worst_case_usd)
        return kept


class StoredVariant(WireModel):
    """A variant as an experiment keeps it: its reference, and the template version, provider, model and
    parameters it resolved to when the experiment started."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    template: str
    template_id: str
    template_version: int
    provider: str | None
    model: str | None
    params: JsonObject = Field(default_factory=dict)


class ExperimentCreate(RequestModel):
    dataset_id: Annotated[str, Field(min_length=1, max_length=64)]
    dataset_version: Annotated[int, Field(ge=1)] | None = Field(default=None, description="Default: the current one.")
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    variants: Annotated[list[VariantSpec], Field(min_length=1, max_length=MAX_VARIANTS)]
    scorers: Annotated[list[Scorer], Field(max_length=MAX_SCORERS)] = Field(default_factory=list)
    priority: Literal["normal", "low", "economy"] = "normal"
    sample: Annotated[int, Field(ge=1, le=50_000)] | None = Field(
        default=None, description="Run a random sample of this many rows (the same sample for every variant)."
    )
    cache: bool = Field(default=True, description="Answer rows from the result cache where it can.")


class LatencySummary(WireModel):
    p50: int | None
    p95: int | None


class VariantResult(WireModel):
    """How one variant did so far."""

    index: int
    template: str = Field(description="The reference as given.")
    template_id: str
    template_version: int
    provider: str
    model: str
    rows: int
    completed: int
    failed: int
    cost_usd: Money = Field(alias="costUSD", description="What this variant's own calls cost.")
    judge_cost_usd: Money = Field(alias="judgeCostUSD", description="What judging its outputs cost.")
    input_tokens: int
    output_tokens: int
    latency_ms: LatencySummary
    scores: dict[str, float | None] = Field(description="Each scorer's mean over the rows scored.")
    scored: dict[str, int] = Field(description="How many rows each scorer scored.")
    score_errors: dict[str, int] = Field(description="How many rows each scorer could not score.")


class ExperimentPublic(WireModel):
    id: str
    name: str | None
    status: ExperimentStatus
    dataset_id: str
    dataset_version: int
    priority: Priority
    rows: int = Field(description="Rows per variant (the sample size when sampled).")
    scorers: list[JsonObject]
    progress: float = Field(description="The share of the experiment's jobs (judges included) that ended.")
    cost_usd: Money = Field(alias="costUSD", description="Everything the experiment cost so far, judges included.")
    variants: list[VariantResult]
    created_at: UtcDatetime
    ended_at: UtcDatetime | None


class ExperimentSummary(WireModel):
    id: str
    name: str | None
    status: ExperimentStatus
    dataset_id: str
    dataset_version: int
    rows: int
    variants: int
    created_at: UtcDatetime
    ended_at: UtcDatetime | None


class ExperimentPage(WireModel):
    items: list[ExperimentSummary]
    next_cursor: str | None


class ScoreInterval(WireModel):
    low: float
    high: float
    level: float = 0.95


class CompareRow(WireModel):
    row: int
    input: JsonObject
    expected: JsonObject | list[object] | str | int | float | bool | None = None
    output_a: str | None
    output_b: str | None
    score_a: float | None
    score_b: float | None
    delta: float | None = Field(description="score b − score a")


class ComparisonDelta(WireModel):
    score: float | None = Field(description="Mean score of b minus a, over rows both scored.")
    score_interval: ScoreInterval | None = Field(description="Paired bootstrap interval of that difference.")
    cost_usd: Money = Field(alias="costUSD")
    latency_p50_ms: int | None


class Comparison(WireModel):
    experiment_id: str
    a: int
    b: int
    scorer: str | None = Field(description="The scorer compared; null: the mean of every scorer per row.")
    averaged: list[str] = Field(default_factory=list, description="The scorers whose per-row mean the score is.")
    paired_rows: int = Field(description="Rows both variants have a score for.")
    wins: int = Field(description="Rows where b scored higher.")
    losses: int
    ties: int
    delta: ComparisonDelta
    rows: list[CompareRow] = Field(description="Rows that differ, largest difference first (up to `limit`).")


class PromoteRequest(RequestModel):
    variant: Annotated[int, Field(ge=0, lt=MAX_VARIANTS)]
    label: LabelName = "production"


class PromoteResult(WireModel):
    experiment_id: str
    template_id: str
    label: str
    version: int
    previous_version: int | None
