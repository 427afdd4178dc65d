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
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"  # on every answer: isoformat is the quick one
