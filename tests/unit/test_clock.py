"""The one wire format for time: RFC 3339, UTC, milliseconds, `Z`."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from promptlab.core.clock import rfc3339


def test_utc_times_keep_milliseconds_and_end_in_z() -> None:
    assert rfc3339(datetime(2026, 11, 25, 13, 37, 52, 123_999, tzinfo=UTC)) == "2026-11-25T13:37:52.123Z"
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"


def test_other_offsets_are_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2026, 11, 25, 0, 30, 0, 5_000, tzinfo=paris)) == "2026-11-24T23:30:00.005Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 11, 25, 13, 37))
