"""OpenAI's Chat Completions wire format (snake_case, as the official SDKs send and read it).

Only what PromptLab does is accepted: a field it would ignore is an error naming the parameter, never dropped
(`extra="forbid"`). Answers follow OpenAI's shapes field for field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TURNS = 1_000
MAX_TURN_CHARS = 1_000_000


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(OpenAIModel):
    type: Literal["text"]
    text: Annotated[str, Field(max_length=MAX_TURN_CHARS)]


class ChatTurn(OpenAIModel):
    """One message; `developer` is OpenAI's newer name for `system`."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[str, Field(max_length=MAX_TURN_CHARS)] | Annotated[list[Any], Field(max_length=100)] | None = (
        None
    )
    name: Annotated[str, Field(max_length=256)] | None = None
    tool_calls: list[Any] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None


class JsonSchemaFormat(OpenAIModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormatIn(OpenAIModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class FunctionIn(OpenAIModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: Annotated[str, Field(max_length=4_000)] | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(OpenAIModel):
    type: Literal["function"]
    function: FunctionIn


class NamedFunction(OpenAIModel):
    name: str


class ToolChoiceIn(OpenAIModel):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(OpenAIModel):
    include_usage: bool = False


class PromptLabExtras(OpenAIModel):
    """PromptLab's own fields, sent by the SDKs as `extra_body={"promptlab": {...}}`."""

    variables: dict[str, Any] | None = None
    priority: Literal["high", "normal", "low"] | None = None
    cache: bool | None = None


class ChatRequest(OpenAIModel):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[ChatTurn], Field(max_length=MAX_TURNS)]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    n: int | None = None
    response_format: ResponseFormatIn | None = None
    user: Annotated[str, Field(max_length=256)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: Annotated[list[ToolIn], Field(min_length=1, max_length=64)] | None = None
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceIn | None = None
    seed: int | None = None
    promptlab: PromptLabExtras | None = None


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: dict[str, str]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCallOut] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
