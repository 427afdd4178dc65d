"""Usage and cost reports."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from promptlab.models.wire import Money, UtcDatetime, WireModel

UsageGroup = Literal["day", "provider", "model", "template", "experiment", "batch"]


class UsageRow(WireModel):
    """What one group (a day, a provider, a model, a template, an experiment or a batch, `-` for none) used."""

    key: str
    requests: int
    completed: int
    failed: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: Money = Field(alias="costUSD")
    saved_usd: Money = Field(alias="savedUSD", description="What cache hits would have cost.")
    batch_saved_usd: Money = Field(alias="batchSavedUSD", description="What the economy lane saved.")
    avg_latency_ms: int | None = Field(description="Mean provider latency of provider-answered jobs.")


class UsageReport(WireModel):
    from_: UtcDatetime = Field(alias="from")
    to: UtcDatetime
    group_by: UsageGroup
    items: list[UsageRow]
    totals: UsageRow
