"""`POST /generate` and `/generate/batch` bodies: the request, chat turns, JSON output mode."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from promptlab.core.json_types import JsonObject
from promptlab.models.wire import (
    Fallbacks,
    MaxTokens,
    ModelName,
    Priority,
    ProviderName,
    RequestModel,
    StopSequences,
    Temperature,
    TemplateRef,
    TopP,
    UtcDatetime,
    WireModel,
)


class ChatMessage(RequestModel):
    """One turn of a conversation; `{{ variables }}` in it are filled from `input` like the template's body."""

    role: Literal["user", "assistant"]
    content: Annotated[str, Field(min_length=1, max_length=100_000)]


class ResponseFormat(RequestModel):
    """JSON output: the answer must be JSON (`json_object`) or satisfy a JSON Schema (`json_schema`)."""

    type: Literal["json_object", "json_schema"]
    json_schema: JsonObject | None = Field(default=None, alias="schema", description="For `json_schema`.")


class GenerateRequest(RequestModel):
    template_id: TemplateRef
    provider: ProviderName | None = None
    model: ModelName | None = None
    input: str | JsonObject = Field(default_factory=dict)
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
        list[JsonObject],
        Field(min_length=1, max_length=100, description="Up to 100 `POST /generate` bodies; each answers alone."),
    ]


class BatchItemError(WireModel):
    code: str
    message: str
    details: JsonObject = Field(default_factory=dict)


class BatchItemResult(WireModel):
    """Either `jobId` and `status`, or `error`."""

    job_id: str | None = None
    status: str | None = None
    error: BatchItemError | None = None


class GenerateBatchResult(WireModel):
    items: list[BatchItemResult]
