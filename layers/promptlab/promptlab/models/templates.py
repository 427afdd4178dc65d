"""Templates on the wire: create/update bodies, versions, labels, render dry runs and diffs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from promptlab.core.json_types import JsonObject
from promptlab.models.generation import ChatMessage
from promptlab.models.tools import ToolChoice, Tools
from promptlab.models.wire import (
    Fallbacks,
    LabelName,
    MaxTokens,
    ModelName,
    Money,
    ProviderName,
    RequestModel,
    Temperature,
    UtcDatetime,
    VariableName,
    WireModel,
)


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
    tools: Tools | None = Field(default=None, description="Functions every job of this version offers the model.")
    tool_choice: ToolChoice | None = None


class TemplateCreate(RequestModel):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
    description: Annotated[str, Field(max_length=2_000)] | None = None
    body: Annotated[str, Field(min_length=1, max_length=100_000)]
    system: Annotated[str, Field(max_length=100_000)] | None = None
    variables: Annotated[list[VariableSpec], Field(max_length=100)] | None = None
    variables_schema: JsonObject | None = Field(
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
    tools: list[JsonObject] | None = None
    tool_choice: str | None = None


class VersionContent(WireModel):
    """What a template version holds."""

    version: int
    body: str
    system: str | None
    variables: list[VariablePublic]
    variables_schema: JsonObject | None = None
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


class MoveLabel(RequestModel):
    version: Annotated[int, Field(ge=1)]
    protected: bool | None = Field(
        default=None, description="Protect the label (only `labels:write` keys move it) or not; omitted: unchanged."
    )


class LabelPublic(WireModel):
    label: str
    version: int
    updated_at: UtcDatetime
    updated_by: str | None
    protected: bool = False


class LabelMovePublic(WireModel):
    label: str
    from_version: int | None
    to_version: int
    moved_by: str | None
    moved_at: UtcDatetime
    experiment_id: str | None = Field(default=None, description="The experiment whose variant was promoted.")


class TemplateLabels(WireModel):
    labels: list[LabelPublic]
    moves: list[LabelMovePublic] = Field(description="Every move, newest first (who, when, from which version).")


class RenderRequest(RequestModel):
    """A dry run of `POST /generate`: the same fields but the template (from the path) and the job options."""

    input: str | JsonObject = Field(default_factory=dict)
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
    changes: dict[str, JsonObject] = Field(description="Other settings that changed: {field: {from, to}}.")


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """What a create or update stores: the template's name and description, and the new version's content."""

    name: str
    description: str | None
    body: str
    system: str | None
    variables: list[JsonObject]
    variables_schema: JsonObject | None
    defaults: JsonObject
    cache_ttl_seconds: int
    cache_system: bool


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    """A row of `template_versions`, typed: what one immutable version says."""

    template_id: str
    version: int
    body: str
    system: str | None
    variables: list[JsonObject]
    defaults: JsonObject
    cache_ttl_seconds: int
    cache_system: bool
    created_at: datetime
    variables_schema: JsonObject | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TemplateVersion:
        """The version of a `template_versions` row."""
        return cls(**row)


@dataclass(frozen=True, slots=True)
class Template:
    """A template joined with one of its versions (the current one unless asked otherwise), typed."""

    id: str
    tenant_id: str
    name: str
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    body: str
    system: str | None
    variables: list[JsonObject]
    variables_schema: JsonObject | None
    defaults: JsonObject
    cache_ttl_seconds: int
    cache_system: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Template:
        """The template of a templates ⋈ template_versions row."""
        return cls(**row)
