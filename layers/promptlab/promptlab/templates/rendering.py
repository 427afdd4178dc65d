"""Template placeholders: find them, bind input to them, render them. No logic, no code execution."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from promptlab.core.errors import FieldProblem, ValidationFailed

NAME = r"[A-Za-z_][A-Za-z0-9_]*"
PLACEHOLDER = re.compile(r"\{\{\s*(" + NAME + r")\s*\}\}")
# Something that looks meant as a placeholder but is not one (`{{ user.name }}`, `{{1x}}`).
_SUSPECT = re.compile(r"\{\{\s*([^{}\s]+)\s*\}\}")
_NAME_ONLY = re.compile(NAME)


@dataclass(frozen=True)
class Variable:
    """A template variable: required unless it has a default."""

    name: str
    required: bool = True
    default: str | None = None


def placeholder_names(*texts: str | None) -> list[str]:
    """Placeholder names in order of first appearance across the texts."""
    seen: dict[str, None] = {}
    for text in texts:
        if text:
            for match in PLACEHOLDER.finditer(text):
                seen.setdefault(match.group(1), None)
    return list(seen)


def check_placeholders(field: str, text: str | None) -> list[FieldProblem]:
    """Problems with `{{ … }}` that are not valid placeholders in one text."""
    if not text:
        return []
    problems = []
    for match in _SUSPECT.finditer(text):
        inner = match.group(1)
        if not _NAME_ONLY.fullmatch(inner):
            problems.append(
                FieldProblem(
                    field=field,
                    message=f"placeholder {{{{ {inner} }}}} is not a variable name "
                    "(letters, digits and _ only, not starting with a digit)",
                )
            )
    return problems


def derive_variables(*, body: str, system: str | None, declared: list[Variable] | None) -> list[Variable]:
    """The version's variables: every placeholder, with declared defaults; 422 on mismatches."""
    problems = check_placeholders("body", body) + check_placeholders("system", system)
    names = placeholder_names(system, body)
    by_name = {v.name: v for v in declared or []}
    for index, var in enumerate(declared or []):
        if var.name not in names:
            problems.append(
                FieldProblem(
                    field=f"variables[{index}].name",
                    message=f"variable {var.name!r} is declared but not used in body or system",
                )
            )
        if var.required and var.default is not None:
            problems.append(
                FieldProblem(
                    field=f"variables[{index}].default",
                    message=f"variable {var.name!r} has a default, so it cannot also be required",
                )
            )
    if problems:
        raise ValidationFailed("the template is not valid", problems)
    return [by_name.get(name, Variable(name=name)) for name in names]


def as_text(value: Any) -> str:
    """A variable's value as the text rendered into the prompt (JSON for anything but a string)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def bind_input(variables: list[Variable], raw: str | Mapping[str, Any]) -> dict[str, str]:
    """Map a request's `input` onto the variables; 422 naming every missing or unknown one."""
    if isinstance(raw, str):
        if len(variables) != 1:
            names = ", ".join(v.name for v in variables) or "none"
            raise ValidationFailed.single(
                "input",
                f"a string input needs a template with exactly one variable; this one has {len(variables)} "
                f"({names}): send an object of variables instead",
            )
        return {variables[0].name: raw}
    known = {v.name for v in variables}
    problems = [
        FieldProblem(field=f"input.{key}", message=f"unknown variable {key!r}; the template has {sorted(known)}")
        for key in raw
        if key not in known
    ]
    bound: dict[str, str] = {}
    for var in variables:
        value = raw.get(var.name)
        if value is None:
            if var.default is not None:
                bound[var.name] = var.default
            elif var.required:
                problems.append(FieldProblem(field=f"input.{var.name}", message=f"variable {var.name!r} is required"))
            else:
                bound[var.name] = ""
        else:
            bound[var.name] = as_text(value)
    if problems:
        raise ValidationFailed("the input does not fit the template's variables", problems)
    return bound


def rendered_length(text: str | None, values: Mapping[str, str], *, utf8: bool = False) -> int:
    """The length `render` would produce (characters, or UTF-8 bytes), computed without building it."""
    if not text:
        return 0
    size = len(text.encode()) if utf8 else len(text)
    sizes: dict[str, int] = {}
    for match in PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name not in values:
            continue
        if name not in sizes:
            sizes[name] = len(values[name].encode()) if utf8 else len(values[name])
        placeholder = match.group(0)
        size += sizes[name] - (len(placeholder.encode()) if utf8 else len(placeholder))
    return size


def check_rendered_size(
    texts: Sequence[str | None], values: Mapping[str, str], *, limit: int, field: str, hint: str
) -> None:
    """422 on `field` naming the cap when the prompt these texts render to would be longer than `limit`
    characters. Measured before rendering, so a small request can never make the service build a huge prompt."""
    total = sum(rendered_length(text, values) for text in texts)
    if total > limit:
        raise ValidationFailed.single(
            field,
            f"the rendered prompt would be {total:,} characters, over the cap of {limit:,}"
            f" (PROMPTLAB_MAX_PROMPT_CHARS): {hint}",
        )


def render(text: str | None, values: Mapping[str, str]) -> str | None:
    """Replace each placeholder with its value in one pass; values are never re-rendered."""
    if text is None:
        return None
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
