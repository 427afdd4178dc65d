"""The wire basics every model shares: camelCase aliases, typed scalars, and the error body."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from promptlab.core.clock import rfc3339
from promptlab.core.json_types import JsonObject
from promptlab.core.money import money_str

# The providers this build knows; `providers/registry.py` has one entry for each (a test keeps them equal).
ProviderName = Literal["anthropic", "openai", "openai-compatible", "bedrock", "fake"]


Priority = Literal["high", "normal", "low", "economy"]


JobStatus = Literal["queued", "processing", "completed", "failed", "cancelled"]


UtcDatetime = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]


Money = Annotated[Decimal, PlainSerializer(money_str, return_type=str)]


VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@-]+$")]


Fallback = Annotated[
    str,
    Field(
        pattern=rf"^({'|'.join(get_args(ProviderName))}):[A-Za-z0-9._:/@-]+$",
        max_length=220,
        description="`provider:model`, tried when the one before it fails for good.",
    ),
]


Fallbacks = Annotated[list[Fallback], Field(max_length=5)]


MaxTokens = Annotated[int, Field(ge=1, le=64_000)]


Temperature = Annotated[Decimal, Field(ge=0, le=2, max_digits=6)]


TopP = Annotated[Decimal, Field(ge=0, le=1, max_digits=6)]


StopSequences = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1, max_length=4)]


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


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(WireModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ErrorField(WireModel):
    field: str
    message: str


class ErrorDetail(WireModel):
    code: str
    message: str
    request_id: str | None
    details: JsonObject = Field(default_factory=dict)


class ErrorBody(WireModel):
    error: ErrorDetail
