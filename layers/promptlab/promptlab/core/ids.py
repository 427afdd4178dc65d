"""Opaque, sortable, typed identifiers: a prefix and a ULID (`job_01J…`)."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds, 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as `tpl_01J9…` or `job_01J9…`."""
    return f"{prefix}_{ulid()}"


def template_id() -> str:
    """A new template id."""
    return new_id("tpl")


def job_id() -> str:
    """A new job id."""
    return new_id("job")


def key_id() -> str:
    """A new API key id (not the key)."""
    return new_id("key")


def tenant_id() -> str:
    """A new tenant id."""
    return new_id("ten")
