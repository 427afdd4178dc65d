"""JSON Schemas from clients, made safe to keep and to run: checked when saved, bounded when validating.

A schema a client sends (a template's `variablesSchema`, a request's `responseFormat.schema`) is checked
once, when it is saved or submitted: its size and depth are capped, `$ref`s must point inside the schema
and never lead back into themselves, and every regular expression must compile in RE2, a linear-time
engine (so `^(a|a)+$` cannot backtrack for seconds). Validation then runs with RE2 for `pattern` and
`patternProperties` and a linear `uniqueItems`, so checking an instance costs time in proportion to its
size, which the request-size cap bounds.

`jsonschema` and `re2` are imported on first use: requests without a schema never pay for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from promptlab.core.errors import ValidationFailed
from promptlab.core.hashing import canonical_json
from promptlab.core.json_types import JsonObject

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

MAX_SCHEMA_BYTES = 32_768
MAX_SCHEMA_DEPTH = 32
MAX_PATTERN_CHARS = 1_000
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")


def _walk(node: Any, pointer: str = "", depth: int = 0) -> Iterator[tuple[str, JsonObject, int]]:
    """Every object in the schema with its JSON pointer and depth."""
    if isinstance(node, dict):
        yield pointer, node, depth
        for key, value in node.items():
            yield from _walk(value, f"{pointer}/{_escape(str(key))}", depth + 1)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{index}", depth + 1)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _local_target(ref: str) -> str | None:
    """The JSON pointer a local `$ref` names (`#/$defs/x` → `/$defs/x`), or None when it is not local."""
    if ref == "#":
        return ""
    if ref.startswith("#/"):
        return "/" + "/".join(_unescape(t) for t in ref[2:].split("/"))
    return None


def _patterns(node: JsonObject) -> Iterator[str]:
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        yield pattern
    properties = node.get("patternProperties")
    if isinstance(properties, dict):
        yield from (key for key in properties if isinstance(key, str))


def _problem(field: str, message: str, pointer: str = "") -> ValidationFailed:
    """422 on `field` and the place in the schema (`variablesSchema.properties.a`)."""
    where = "".join(f".{_unescape(t)}" for t in pointer.split("/")[1:])[:300]
    return ValidationFailed.single(field + where, message)


def _check_refs(field: str, refs: dict[str, str], pointers: set[str]) -> None:
    """Every `$ref` is local, exists, and no chain of them leads back into the schema that holds it."""
    edges: dict[str, str] = {}
    for where, ref in refs.items():
        target = _local_target(ref)
        if target is None:
            raise _problem(field, f"$ref {ref[:100]!r} must point inside the schema (#/…)", where)
        if target not in pointers:
            raise _problem(field, f"$ref {ref[:100]!r} points at nothing in the schema", where)
        edges[where] = target

    def reaches_itself(start: str) -> bool:
        seen: set[str] = set()
        frontier = [edges[start]]
        while frontier:
            target = frontier.pop()
            if start == target or start.startswith(target + "/") or target == "":
                return True  # the ref's own subschema is inside what it points at: an endless expansion
            if target in seen:
                continue
            seen.add(target)
            frontier += [edges[w] for w in edges if w == target or w.startswith(target + "/")]
        return False

    for where in edges:
        if reaches_itself(where):
            raise _problem(field, "a recursive $ref (it leads back into itself) is not allowed", where)


@cache
def _quiet_options() -> Any:
    """RE2 options that do not print a refused pattern to stderr."""
    import re2

    options = re2.Options()
    options.log_errors = False
    return options


@cache
def re2_pattern(pattern: str) -> Any:
    """A compiled RE2 pattern (linear-time matching); `re2.error` when RE2 refuses it."""
    import re2

    return re2.compile(pattern, options=_quiet_options())


def check_schema(schema: JsonObject, *, field: str) -> None:
    """422 on `field` unless the schema is valid JSON Schema (2020-12) within every bound above."""
    if len(canonical_json(schema).encode()) > MAX_SCHEMA_BYTES:
        raise _problem(field, f"the schema is larger than {MAX_SCHEMA_BYTES} bytes")
    import re2

    refs: dict[str, str] = {}
    pointers: set[str] = set()
    has_pattern_properties = has_unevaluated = False
    for pointer, node, depth in _walk(schema):
        pointers.add(pointer)
        has_pattern_properties = has_pattern_properties or "patternProperties" in node
        has_unevaluated = has_unevaluated or "unevaluatedProperties" in node
        if depth > MAX_SCHEMA_DEPTH:
            raise _problem(field, f"the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels", pointer)
        for keyword in _REF_KEYWORDS:
            if isinstance(node.get(keyword), str):
                refs[pointer] = node[keyword]
            elif keyword in node:
                raise _problem(field, f"{keyword} must be a string", f"{pointer}/{keyword}")
        for pattern in _patterns(node):
            if len(pattern) > MAX_PATTERN_CHARS:
                raise _problem(field, f"a pattern is longer than {MAX_PATTERN_CHARS} characters", pointer)
            try:
                re2.compile(pattern, _quiet_options())
            except re2.error:
                raise _problem(
                    field,
                    "a pattern uses a feature the linear-time regex engine (RE2) does not have"
                    " (backreferences, lookaround): rewrite it without them",
                    pointer,
                ) from None
    _check_refs(field, refs, pointers)
    if has_pattern_properties and has_unevaluated:
        # jsonschema evaluates that pair with Python's backtracking `re`; refuse it rather than run it.
        raise _problem(field, "patternProperties together with unevaluatedProperties is not supported")
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise _problem(field, f"not a valid JSON Schema: {str(exc.message)[:300]}") from exc


@cache
def _bounded_validator_class() -> type[Validator]:
    """Draft 2020-12 with RE2 for patterns and a linear uniqueItems."""
    import re2
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Validator, value: str, instance: Any, _schema: JsonObject) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not re2.search(value, instance):
            yield ValidationError(f"does not match the pattern {value[:100]!r}")

    def pattern_properties(
        validator: Any, value: JsonObject, instance: Any, _schema: JsonObject
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        for regex, subschema in value.items():
            for name, item in instance.items():
                if re2.search(regex, name):
                    yield from validator.descend(item, subschema, path=name, schema_path=regex)

    def additional_properties(
        validator: Any, value: Any, instance: Any, schema: JsonObject
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        properties = schema.get("properties") or {}
        patterns = list(schema.get("patternProperties") or {})
        extras = [n for n in instance if n not in properties and not any(re2.search(r, n) for r in patterns)]
        if validator.is_type(value, "object"):
            for name in extras:
                yield from validator.descend(instance[name], value, path=name)
        elif value is False and extras:
            yield ValidationError(f"additional properties are not allowed ({', '.join(map(repr, extras[:5]))[:300]})")

    def unique_items(
        validator: Validator, value: bool, instance: Any, _schema: JsonObject
    ) -> Iterator[ValidationError]:
        if not (value and validator.is_type(instance, "array")):
            return
        seen: set[str] = set()
        for item in instance:
            key = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
            if key in seen:
                yield ValidationError("has non-unique elements")
                return
            seen.add(key)

    extended: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        {
            "pattern": pattern,
            "patternProperties": pattern_properties,
            "additionalProperties": additional_properties,
            "uniqueItems": unique_items,
        },
    )
    return extended


def validator_for(schema: JsonObject) -> Validator:
    """A validator of a checked schema whose run time grows with the instance's size only."""
    return _bounded_validator_class()(schema)
