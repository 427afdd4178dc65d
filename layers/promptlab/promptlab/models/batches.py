"""The economy lane's provider batches on the wire."""

from __future__ import annotations

from typing import Literal

from promptlab.models.wire import UtcDatetime, WireModel


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
