"""JSON output mode: check the requested schema at submit, validate answers at completion.

`jsonschema` is imported on first use, so requests without a response format never pay for it.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from promptlab.core.errors import ValidationFailed
from promptlab.core.json_schema import check_schema, validator_for
from promptlab.core.json_types import JsonObject
from promptlab.models.generation import ResponseFormat

# An invalid answer is sent back (at most this many UTF-8 bytes, and 4 per output token allowed) with the
# reason (truncated to that) when asking again, so what a re-ask can cost is known at submit.
ECHO_MAX_BYTES = 8_000
ECHO_BYTES_PER_TOKEN = 4
REASON_MAX_CHARS = 200
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def checked_format(fmt: ResponseFormat) -> JsonObject:
    """The format as stored on the job; 422 naming `responseFormat.schema` when the schema is unusable."""
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if fmt.json_schema is None:
        raise ValidationFailed.single("responseFormat.schema", "a json_schema response format needs a schema")
    check_schema(fmt.json_schema, field="responseFormat.schema")
    return {"type": "json_schema", "schema": fmt.json_schema}


def parse(text: str) -> Any:
    """The JSON value of an answer (a ```json fence is tolerated); `ValueError` when it is not JSON."""
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def problem(text: str, fmt: JsonObject) -> str | None:
    """Why the answer does not satisfy the format, or None when it does (a ```json fence is tolerated)."""
    try:
        value = parse(text)
    except ValueError as exc:
        return f"the answer is not JSON ({exc})"
    if fmt["type"] == "json_object":
        return None if isinstance(value, dict) else "the answer is JSON but not an object"
    try:
        errors = sorted(
            itertools.islice(validator_for(fmt["schema"]).iter_errors(value), 100), key=lambda e: list(e.absolute_path)
        )
    except Exception as exc:  # noqa: BLE001 - the call was billed: its cost must be recorded whatever the schema does
        return f"the answer could not be checked against the schema ({type(exc).__name__})"
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "the top level"
    return f"at {where}: {first.message}"


def instruction(fmt: JsonObject) -> str:
    """What a provider without a native JSON mode is told (appended to the system prompt)."""
    if fmt["type"] == "json_object":
        return "Answer with a single JSON object and nothing else."
    return "Answer with a single JSON value, and nothing else, that satisfies this JSON Schema: " + json.dumps(
        fmt["schema"], separators=(",", ":")
    )


def correction(why: str) -> str:
    """The user turn that asks again after an invalid answer."""
    why = why[:REASON_MAX_CHARS]
    return f"Your previous answer was not valid: {why}. Answer again with only the JSON, nothing else."


def _echo_bytes(max_tokens: int) -> int:
    return min(ECHO_MAX_BYTES, ECHO_BYTES_PER_TOKEN * max_tokens)


def echo(output: str, *, max_tokens: int) -> str:
    """The part of an invalid answer that is kept and sent back when asking again (cut at a character)."""
    return output.encode()[: _echo_bytes(max_tokens)].decode(errors="ignore")


def reask_bytes_bound(max_tokens: int) -> int:
    """At most how many UTF-8 bytes asking again adds to the prompt (the echoed answer and the correction)."""
    return _echo_bytes(max_tokens) + len(correction("x" * REASON_MAX_CHARS).encode()) + 3 * REASON_MAX_CHARS


def example(schema: JsonObject) -> Any:
    """A small value that satisfies simple schemas (the offline fake provider's answer in JSON mode)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example(props.get(name, {})) for name in schema.get("required", list(props))}
    if kind == "array":
        return [example(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind in {"integer", "number"}:
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(1, schema.get("minLength", 1)) if kind == "string" else "fake"
