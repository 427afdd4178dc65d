"""Dead letters on the wire: the list, and redriving them."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from promptlab.models.wire import RequestModel, UtcDatetime, WireModel


class RedriveRequest(RequestModel):
    job_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class RedriveRefusal(WireModel):
    """A dead-lettered job that was not sent again, and why (its key's budget no longer covers it)."""

    job_id: str
    code: str
    message: str


class RedriveResult(WireModel):
    redriven: list[str]
    refused: list[RedriveRefusal] = []


class DeadLetterPublic(WireModel):
    id: int
    job_id: str | None
    queue: str
    reason: str
    receive_count: int | None
    dead_lettered_at: UtcDatetime
    redriven_at: UtcDatetime | None
    dismissed_at: UtcDatetime | None = None
