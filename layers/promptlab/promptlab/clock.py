"""UTC time and its one wire format (RFC 3339 with `Z`)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    """`2026-11-25T13:37:52.123Z`: UTC, milliseconds, `Z`."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: PromptLab keeps every time in UTC")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
