"""`./dev routes`: write the `Events` of `ApiFunction` in template.yaml from the routes' declarations.

Each route is declared once, where it is registered (`promptlab.api.declared.route`); this writes the Api
event API Gateway needs for each, in declaration order, replacing the block between `Events:` and the
next property of `ApiFunction`. A test fails, naming this command, when the template and the routes differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
_FUNCTION = "  ApiFunction:\n"
_EVENTS = "      Events:\n"


def events_block() -> str:
    """The YAML lines of ApiFunction's events, as the template keeps them (one flow mapping each)."""
    import promptlab.api.app  # noqa: F401  (registers every route)
    from promptlab.api.declared import sam_events

    lines = [_EVENTS]
    for name, event in sam_events().items():
        properties = event["Properties"]
        lines.append(f"        {name}:\n          Type: Api\n")
        lines.append(
            f'          Properties: {{RestApiId: !Ref PromptLabApi, Path: "{properties["Path"]}",'
            f" Method: {properties['Method']}}}\n"
        )
    return "".join(lines)


def with_events(template: str) -> str:
    """The template's text with ApiFunction's events block replaced."""
    function = template.index(_FUNCTION)
    start = template.index(_EVENTS, function)
    end = start + len(_EVENTS)
    lines = template[end:].splitlines(keepends=True)
    kept = 0
    for line in lines:  # the block ends at the first line indented no deeper than `Events:`
        if line.strip() and len(line) - len(line.lstrip()) <= 6:
            break
        kept += len(line)
    rest = template[end + kept :]
    return template[:start] + events_block() + ("\n" if not rest.startswith("\n") else "") + rest


def main() -> int:
    text = TEMPLATE.read_text(encoding="utf-8")
    written = with_events(text)
    if written != text:
        TEMPLATE.write_text(written, encoding="utf-8")
        print("template.yaml: ApiFunction's events written from the routes")
    else:
        print("template.yaml: ApiFunction's events already match the routes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
