"""Pydantic validation errors in a person's words: one `{field, message}` per bad field."""

from __future__ import annotations

import math
import re
from typing import Any

from promptlab.core.json_types import JsonObject

# Union branches pydantic adds to an error location (`input.str`, `input.dict[str,any]`).
_BRANCH = re.compile(r"^(str|int|float|bool|none|dict\[.*\]|list\[.*\]|literal\[.*\]|function-\w+.*)$")

_FRIENDLY = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if not (isinstance(p, str) and _BRANCH.match(p))]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def validation_fields(errors: list[JsonObject]) -> list[dict[str, str]]:
    """Pydantic errors as `[{field, message}]`, one entry per field, in a person's words."""
    merged: dict[str, list[str]] = {}
    for err in errors:
        field = _field_name(tuple(err.get("loc", ())))
        message = str(_FRIENDLY.get(err.get("type", ""), err.get("msg", "is not valid")))
        if err.get("type") in {"string_type", "dict_type"} and field == "input":
            message = "must be a string or an object of variables"
        bucket = merged.setdefault(field, [])
        if message not in bucket:
            bucket.append(message)
    return [{"field": f, "message": "; ".join(m)} for f, m in merged.items()]


MAX_JSON_DEPTH = 64


def unsafe_json(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """(field, problem) for what Postgres cannot store (NUL, lone surrogates, NaN and Infinity, which JSON
    has no number for) or nesting past 64 levels."""
    if depth > MAX_JSON_DEPTH:
        return path or "body", f"is nested more than {MAX_JSON_DEPTH} levels deep"
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body", "is NaN or Infinity, which JSON has no number for"
    if isinstance(value, str):
        if "\x00" in value:
            return path or "body", "contains a NUL character (\\u0000), which text cannot hold"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "body", "contains an unpaired surrogate (not valid Unicode text)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unsafe_json(key, path or "body", depth + 1) or unsafe_json(
                item, f"{path}.{key}" if path else str(key), depth + 1
            )
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unsafe_json(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
    return None
