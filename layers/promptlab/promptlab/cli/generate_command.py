"""`promptlab generate`: submit a generation over HTTP, wait for it with a spinner, print output and cost."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

from promptlab.cli.failures import UsageError
from promptlab.core.json_types import JsonObject


def typed_value(name: str, raw: str, schema: JsonObject | None) -> Any:
    """A `--var` value as the template's variable schema types it (`name:=JSON` is always JSON)."""
    if name.endswith(":"):
        try:
            return json.loads(raw)
        except ValueError:
            raise UsageError(f"--var {name}={raw}: the value after := must be JSON") from None
    prop = ((schema or {}).get("properties") or {}).get(name)
    kinds = prop.get("type") if isinstance(prop, dict) else None
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if not kinds or "string" in kinds:
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    matches = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }
    if any(matches.get(kind, False) for kind in kinds):
        return value
    raise UsageError(f"--var {name}={raw}: input.{name} is {' or '.join(kinds)} in the template's variable schema")


def generate_input(args: argparse.Namespace, schema: JsonObject | None) -> str | JsonObject | None:
    """The job's input from `--input` (text or a JSON object) and each `--var name=value` / `name:=json`."""
    given: str | JsonObject | None = None
    if args.input is not None:
        try:
            parsed = json.loads(args.input)
        except ValueError:
            parsed = None
        given = parsed if isinstance(parsed, dict) else args.input
    if not args.var:
        return given
    variables = dict(given) if isinstance(given, dict) else {}
    for pair in args.var:
        name, sep, value = pair.partition("=")
        if not sep or not name.rstrip(":"):
            raise UsageError(f"--var takes name=value or name:=json, not {pair!r}")
        variables[name.rstrip(":")] = typed_value(name, value, schema)
    return variables


class _Spinner:
    """A spinner on stderr while a job runs (only on a terminal)."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, label: str) -> None:
        self.label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            sys.stderr.write(f"\r{self.FRAMES[frame % len(self.FRAMES)]} {self.label}")
            sys.stderr.flush()
            frame += 1
        sys.stderr.write("\r" + " " * (len(self.label) + 2) + "\r")

    def __enter__(self) -> _Spinner:
        if sys.stderr.isatty():
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def cmd_generate(args: argparse.Namespace) -> int:
    from promptlab.client import Client

    generate_input(args, None)  # a malformed --var is a usage error before any request
    client = Client(args.url, args.api_key)
    reference = client.templates.resolve(args.template)
    schema = client.templates.get(reference.partition("@")[0]).variables_schema if args.var else None
    options = {"provider": args.provider, "model": args.model, "max_tokens": args.max_tokens, "priority": args.priority}
    job = client.generate(reference, generate_input(args, schema), wait=False, **options)
    if args.wait and job.status not in {"completed", "failed", "cancelled"}:
        with _Spinner(f"{job.id} {job.status}…"):
            job = client.jobs.wait(job.id)
    if args.json:
        print(job.model_dump_json(by_alias=True, indent=2, exclude_none=True))
    elif job.status == "completed":
        print(job.output or "")
    elif not args.wait:
        print(job.id)
    summary = f"{job.id} {job.status}"
    if job.status == "completed":
        tokens = f"{job.input_tokens or 0} in / {job.output_tokens or 0} out tokens"
        price = "cost unknown" if job.estimated_cost_usd is None else f"${job.estimated_cost_usd}"
        saved = f", cache hit (saved ${job.saved_cost_usd})" if job.cache_hit else ""
        summary += f" · {job.provider}/{job.model} · {tokens} · {price}{saved}"
    elif job.error:
        summary += f" · {job.error.code}: {job.error.message}"
    print(summary, file=sys.stderr)
    return 0 if job.status in {"completed", "queued", "processing"} else 1


def register(sub: Any) -> None:
    """Add `generate`."""
    gen = sub.add_parser("generate", help="submit a generation over HTTP (and wait for its output)")
    gen.add_argument("template", help="a template id (tpl_…), its exact name, either with @label or @version")
    gen.add_argument("--input", help="text for a one-variable template, or a JSON object of variables")
    gen.add_argument(
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="one variable, typed by the template's variable schema; NAME:=JSON for a JSON value (repeatable)",
    )
    gen.add_argument("--provider")
    gen.add_argument("--model")
    gen.add_argument("--max-tokens", type=int)
    gen.add_argument("--priority", choices=["high", "normal", "low", "economy"])
    gen.add_argument("--wait", action="store_true", help="long-poll until the job ends; print its output")
    gen.add_argument("--json", action="store_true", help="print the job as JSON")
    gen.add_argument("--url", default=os.environ.get("PROMPTLAB_URL", "http://127.0.0.1:3000"))
    gen.add_argument("--api-key", help="default: PROMPTLAB_API_KEY, else the local runner's development key")
    gen.set_defaults(func=cmd_generate)
