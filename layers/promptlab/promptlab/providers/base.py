"""The provider port: what a generation call takes, returns, and how it fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from promptlab.core.json_types import JsonObject

# Everything else in 4xx is permanent.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})

_CODES = {
    400: "invalid_request",
    401: "authentication_failed",
    403: "permission_denied",
    404: "model_not_found",
    408: "timeout",
    409: "conflict",
    413: "request_too_large",
    422: "invalid_request",
    425: "too_early",
    429: "rate_limited",
    529: "overloaded",
}


@dataclass(frozen=True)
class Attachment:
    """An image or a PDF in a user turn: inline (base64 `data`), by `url` (https), or an `s3://` key."""

    media_type: str  # image/png, image/jpeg, image/gif, image/webp, application/pdf
    data: str | None = None
    url: str | None = None

    @property
    def is_document(self) -> bool:
        return self.media_type == "application/pdf"


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for (never run by PromptLab): `arguments` is the JSON text of its input."""

    id: str
    name: str
    arguments: str

    def to_json(self) -> JsonObject:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and its parameters' JSON Schema."""

    name: str
    parameters: JsonObject
    description: str | None = None


@dataclass(frozen=True)
class Message:
    """One turn: `user` (text and attachments), `assistant` (text and the tool calls it made), or `tool` (the
    result of one tool call, answering `tool_call_id`)."""

    role: str
    content: str
    attachments: tuple[Attachment, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class GenerationCall:
    model: str
    system: str | None
    messages: list[Message]
    max_tokens: int
    temperature: Decimal | None
    timeout_seconds: float
    cache_system: bool = False
    top_p: Decimal | None = None
    stop: tuple[str, ...] = ()
    response_format: JsonObject | None = None  # JSON mode: {"type": "json_object" | "json_schema", "schema"}
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None  # "auto", "none", "required", or "function:<name>"
    seed: int | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass(frozen=True)
class ProviderResult:
    text: str
    usage: Usage
    model: str
    request_id: str | None
    finish_reason: str
    truncated: bool = False
    rate_limits: dict[str, str] = field(default_factory=dict)  # the provider's rate-limit headers
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass
class ProviderError(Exception):
    """A failed call, classified once: `retryable` decides between the queue and `failed`."""

    code: str
    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def is_retryable_status(status: int) -> bool:
    """408, 409, 425, 429 and every 5xx (529 included) are worth another attempt."""
    return status in RETRYABLE_STATUSES or 500 <= status <= 599


def error_for_status(status: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """The classified error for an HTTP status from a provider."""
    code = _CODES.get(status) or ("provider_unavailable" if status >= 500 else "provider_error")
    return ProviderError(
        code=code,
        message=message,
        retryable=is_retryable_status(status),
        status=status,
        retry_after=retry_after,
    )


class Provider(Protocol):
    """One LLM API. Implementations never retry: the queue does."""

    name: str

    def generate(self, call: GenerationCall) -> ProviderResult:
        """Run one generation or raise `ProviderError`."""
        ...


@dataclass(frozen=True)
class BatchStatus:
    """A provider batch as the provider reports it."""

    provider_batch_id: str
    ended: bool
    counts: dict[str, int]  # succeeded, errored, expired, canceled
    expires_at: datetime | None = None


@dataclass(frozen=True)
class BatchItem:
    """One request's outcome in an ended batch: `succeeded` (with a result), `errored` (with a classified
    error), `expired` or `canceled`."""

    custom_id: str
    kind: str
    result: ProviderResult | None = None
    error: ProviderError | None = None


class BatchProvider(Protocol):
    """A provider's batch API (Anthropic Message Batches, OpenAI Batch, the fake): about half price, results
    within 24 h, each request named by `custom_id` (our job id)."""

    name: str

    def submit_batch(self, calls: list[tuple[str, GenerationCall]]) -> BatchStatus: ...

    def batch_status(self, provider_batch_id: str) -> BatchStatus: ...

    def batch_results(self, provider_batch_id: str) -> Iterator[BatchItem]: ...
