"""Typed template variables: a version may declare a JSON Schema for its variables.

The schema is an object schema whose `properties` are exactly the template's placeholders (types, enums,
lengths, defaults, descriptions); `required` lists the ones a request must give. `POST /generate` checks
its input against it and answers 422 naming each bad field (`input.<name>`). Without a schema, variables
are inferred from the placeholders and are required strings.
"""

from __future__ import annotations

from promptlab.core.errors import FieldProblem, ValidationFailed
from promptlab.core.json_schema import check_schema, validator_for
from promptlab.core.json_types import JsonObject
from promptlab.templates.rendering import Variable, as_text


def variables_from_schema(schema: JsonObject, names: list[str]) -> list[Variable]:
    """The variables a schema declares for these placeholders; 422 (`variablesSchema…`) when they disagree."""
    check_schema(schema, field="variablesSchema")
    if schema.get("type", "object") != "object":
        raise ValidationFailed.single("variablesSchema.type", "must be 'object': the variables are its properties")
    properties: JsonObject = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    problems = [
        FieldProblem(f"variablesSchema.properties.{name}", f"{name!r} is not a placeholder of the body or system")
        for name in properties
        if name not in names
    ]
    problems += [
        FieldProblem(f"variablesSchema.properties.{name}", f"placeholder {name!r} needs a property in the schema")
        for name in names
        if name not in properties
    ]
    problems += [
        FieldProblem("variablesSchema.required", f"{name!r} is required but has no property")
        for name in sorted(required - set(properties))
    ]
    if problems:
        raise ValidationFailed("the variable schema does not match the template", problems)
    variables = []
    for name in names:
        spec = properties[name] if isinstance(properties[name], dict) else {}
        default = spec.get("default")
        variables.append(
            Variable(
                name=name,
                required=name in required and default is None,
                default=None if default is None else as_text(default),
            )
        )
    return variables


def check_input(schema: JsonObject, raw: str | JsonObject, variables: list[Variable]) -> None:
    """Validate a request's input against the schema (defaults filled in); 422 naming every bad field."""
    if isinstance(raw, str):
        if len(variables) != 1:
            return  # bind_input explains this case
        raw = {variables[0].name: raw}
    properties: JsonObject = schema.get("properties") or {}
    instance = {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec and name not in raw
    }
    instance.update(raw)
    problems: dict[str, str] = {}
    for error in validator_for(schema).iter_errors(instance):
        path = ".".join(str(p) for p in error.absolute_path)
        if not path and error.validator == "required":
            missing = str(error.message).split("'")[1] if "'" in str(error.message) else ""
            path = missing
        field = f"input.{path}" if path else "input"
        problems.setdefault(field, error.message)
    if problems:
        raise ValidationFailed(
            "the input does not satisfy the template's variable schema",
            [FieldProblem(field, message) for field, message in sorted(problems.items())],
        )
