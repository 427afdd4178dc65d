"""Usage and cost reports: requests, cache hits, tokens, cost, savings and latency per group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from promptlab.core.clock import utc_now
from promptlab.core.errors import ValidationFailed
from promptlab.db import usage_repo
from promptlab.db.connection import connection
from promptlab.models.usage import UsageReport, UsageRow

MAX_SPAN = timedelta(days=400)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def usage_report(*, tenant_id: str, start: datetime | None, end: datetime | None, group_by: str = "day") -> UsageReport:
    """Jobs created in [start, end) (default: this UTC month so far), grouped; naive times are UTC."""
    now = utc_now()
    end = _utc(end) if end is not None else now
    start = _utc(start) if start is not None else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start >= end:
        raise ValidationFailed.single("from", "`from` must be earlier than `to`")
    if end - start > MAX_SPAN:
        raise ValidationFailed.single("from", f"a report spans at most {MAX_SPAN.days} days")
    with connection() as conn:
        rows, totals = usage_repo.usage(conn, tenant_id=tenant_id, start=start, end=end, group_by=group_by)
    return UsageReport.model_validate(
        {
            "from": start,
            "to": end,
            "group_by": group_by,
            "items": [UsageRow.model_validate(row) for row in rows],
            "totals": UsageRow.model_validate(totals),
        }
    )
