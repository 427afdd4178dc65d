"""A CloudFormation-aware reading of `template.yaml`: short-form tags, Globals, intrinsic functions."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from promptlab.core.json_types import JsonObject

NO_VALUE = object()


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's `!Ref`, `!GetAtt`, `!Sub` … tags."""


def _tag(name: str) -> Callable[[yaml.SafeLoader, yaml.Node], JsonObject]:
    key = "Ref" if name == "Ref" else ("Condition" if name == "Condition" else f"Fn::{name}")

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> JsonObject:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _name in (
    "Ref", "GetAtt", "Sub", "Join", "If", "Equals", "Not", "And", "Or", "Select", "Split",
    "FindInMap", "GetAZs", "ImportValue", "Base64", "Cidr", "Condition", "Length", "ToJsonString",
):  # fmt: skip
    _Loader.add_constructor(f"!{_name}", _tag(_name))


def load_template(path: Path) -> JsonObject:
    """Parse a SAM template and merge `Globals.Function` into every function."""
    data: JsonObject = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    globals_ = (data.get("Globals") or {}).get("Function") or {}
    for resource in (data.get("Resources") or {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"] = merge_globals(globals_, resource.get("Properties") or {})
    return data


def merge_globals(globals_: Mapping[str, Any], properties: Mapping[str, Any]) -> JsonObject:
    """SAM's rule: maps merge (function wins), lists add up (Globals' first, as `sam build` makes a function's
    `Layers`), scalars are replaced by the function's."""
    merged: JsonObject = copy.deepcopy(dict(globals_))
    for key, value in properties.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_globals(merged[key], value)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = [*merged[key], *copy.deepcopy(value)]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_SUB = re.compile(r"\$\{([^}!]+)\}")


class Resolver:
    """Evaluates intrinsic functions against parameters, pseudo parameters and known resources."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        refs: Mapping[str, str],
        attributes: Mapping[tuple[str, str], str],
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.refs = refs
        self.attributes = attributes

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"!Ref {name}: no parameter or resource of that name is known to the local runner")

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise KeyError(f"!GetAtt {logical_id}.{attribute} is not supported by the local runner") from None

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        return bool(self.resolve(conditions[name]))

    def _sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name in extra:
                return str(self.resolve(extra[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return _SUB.sub(replace, text).replace("${!", "${")

    def resolve(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic function
        """The value with every intrinsic function evaluated; `AWS::NoValue` entries removed."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(parts[0], parts[1])
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self._sub(arg[0], arg[1])
                return self._sub(arg, {})
            if key == "Fn::Join":
                return str(self.resolve(arg[0])).join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(self.resolve(arg[0]))
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                mapping = (self.template.get("Mappings") or {})[self.resolve(arg[0])]
                return mapping[self.resolve(arg[1])][self.resolve(arg[2])]
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Each parameter's override or default; a parameter with neither is an error."""
    values: dict[str, str] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise ValueError(f"template parameter {name} has no default: pass --parameter-overrides {name}=…")
    return values


def find_template(start: Path | None = None) -> Path:
    """`template.yaml` in this folder or the nearest parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "template.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("no template.yaml here or in a parent folder; pass --template")
