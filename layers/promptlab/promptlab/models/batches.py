"""The economy lane's provider batches on the wire."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True)
class ProviderBatch:
    """A row of `provider_batches`, typed: one batch the economy lane sent to a provider."""

    id: str
    tenant_id: str
    provider: str
    model: str
    provider_batch_id: str | None
    status: str
    request_count: int
    succeeded: int
    errored: int
    expired: int
    canceled: int
    error: str | None
    expires_at: datetime | None
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProviderBatch:
        """The batch of a `SELECT * FROM provider_batches` row."""
        return cls(**row)

    def public(self) -> BatchPublic:
        """The wire view."""
        counts = BatchCounts(
            total=self.request_count,
            succeeded=self.succeeded,
            errored=self.errored,
            expired=self.expired,
            canceled=self.canceled,
        )
        return BatchPublic(
            id=self.id,
            provider=self.provider,
            model=self.model,
            provider_batch_id=self.provider_batch_id,
            status=self.status,
            request_counts=counts,
            error=self.error,
            created_at=self.created_at,
            expires_at=self.expires_at,
            ended_at=self.ended_at,
        )
