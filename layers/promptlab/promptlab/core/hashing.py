"""Canonical JSON and the job's `input_hash` (the result-cache key)."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from promptlab.core.json_types import JsonObject


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"not canonical-JSON serialisable: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text, decimals as strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def input_hash(
    *,
    template_id: str,
    version: int,
    provider: str,
    model: str,
    params: JsonObject,
    bound_input: dict[str, str],
    messages: list[dict[str, str]] | None = None,
) -> str:
    """SHA-256 hex of everything that decides a generation's answer."""
    document: JsonObject = {
        "templateId": template_id,
        "version": version,
        "provider": provider,
        "model": model,
        "params": params,
        "input": bound_input,
    }
    if messages:  # absent otherwise, so hashes of plain requests are unchanged
        document["messages"] = messages
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()
