"""Opaque list cursors."""

from __future__ import annotations

import base64
import binascii

from promptlab.core.errors import ValidationFailed


def encode_cursor(last_id: str) -> str:
    """The cursor that continues after `last_id`."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id a cursor continues after; 422 on a cursor we did not make."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw or "_" not in raw or len(raw) > 64:
        raise ValidationFailed.single("cursor", "not a cursor from a previous page of this list")
    return raw


def encode_row_cursor(n: int) -> str:
    """The cursor that continues after row number `n` (of a dataset or an experiment's results)."""
    return encode_cursor(f"row_{n}")


def decode_row_cursor(cursor: str | None) -> int:
    """The row number a row cursor continues after (0: from the start); 422 on a cursor we did not make."""
    after = decode_cursor(cursor)
    if after is None:
        return 0
    number = after.removeprefix("row_")
    if not after.startswith("row_") or not number.isdigit() or int(number) < 1:
        raise ValidationFailed.single("cursor", "not a cursor from a previous page of this list")
    return int(number)
