"""`POST /generate` and `/generate/batch` bodies: the request, chat turns, JSON output mode."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from promptlab.core.json_types import JsonObject
from promptlab.models.tools import AttachmentIn, ToolCallIn, ToolChoice, Tools
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
    """One turn of a conversation; `{{ variables }}` in it are filled from `input` like the template's body.

    A user turn may show images and PDFs (`attachments`); an assistant turn may carry the `toolCalls` an
    earlier answer asked for; a `tool` turn gives one call's result (`toolCallId`, `content`)."""

    role: Literal["user", "assistant", "tool"]
    content: Annotated[str, Field(max_length=100_000)] = ""
    attachments: Annotated[list[AttachmentIn], Field(min_length=1, max_length=20)] | None = None
    tool_calls: Annotated[list[ToolCallIn], Field(min_length=1, max_length=64)] | None = None
    tool_call_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _shape(self) -> ChatMessage:
        if self.attachments and self.role != "user":
            raise ValueError("only user turns carry attachments")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant turns carry tool calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool turn, and only a tool turn, names its `toolCallId`")
        if not (self.content or self.attachments or self.tool_calls):
            raise ValueError("a turn needs content")
        return self


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
    tools: Tools | None = Field(
        default=None, description="Functions the model may ask to call (the answer's `toolCalls`; never run here)."
    )
    seed: Annotated[int, Field(ge=-(2**63), lt=2**63)] | None = Field(
        default=None,
        description="Sent to providers that take one (OpenAI and compatible servers); part of the cache key.",
    )
    tool_choice: ToolChoice | None = Field(
        default=None, description="`auto` (default), `none`, `required`, `function:<name>`."
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
