"""Tools and attachments on PromptLab's own wire (`POST /generate`, templates): what a model may call, what it
asked to call, and the images and PDFs a user turn shows it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from promptlab.core.json_types import JsonObject
from promptlab.models.wire import RequestModel

ToolName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MediaType = Literal["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]
MAX_ATTACHMENT_CHARS = 14_000_000  # base64 of ~10 MB; a request body's own limit is smaller


class ToolSpec(RequestModel):
    """A function the model may ask to call. PromptLab never runs it: the answer carries the call."""

    name: ToolName
    description: Annotated[str, Field(max_length=4_000)] | None = None
    parameters: JsonObject = Field(
        default_factory=lambda: {"type": "object", "properties": {}}, description="A JSON Schema of its input."
    )


ToolChoice = (
    Literal["auto", "none", "required"]
    | Annotated[str, Field(pattern=r"^function:[A-Za-z0-9_-]{1,64}$", description="`function:<name>`: that tool")]
)
Tools = Annotated[list[ToolSpec], Field(min_length=1, max_length=64)]


class AttachmentIn(RequestModel):
    """An image or a PDF: inline (`data`, base64) or by `url` (https; `s3://` in the stack's bucket for
    Bedrock). Which sources a provider takes is checked at submit."""

    media_type: MediaType
    data: (
        Annotated[str, Field(min_length=1, max_length=MAX_ATTACHMENT_CHARS, pattern=r"^[A-Za-z0-9+/=\s]+$")] | None
    ) = None
    url: Annotated[str, Field(max_length=2_048, pattern=r"^(https|s3)://\S+$")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AttachmentIn:
        if (self.data is None) == (self.url is None):
            raise ValueError("give `data` or `url`, one of them")
        return self


class ToolCallIn(RequestModel):
    """A call an assistant turn made (as an earlier answer's `toolCalls` gave it)."""

    id: Annotated[str, Field(min_length=1, max_length=200)]
    name: ToolName
    arguments: Annotated[str, Field(max_length=100_000)] = "{}"
