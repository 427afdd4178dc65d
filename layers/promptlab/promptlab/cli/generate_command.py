"""`promptlab generate`: submit a generation over HTTP, wait for it with a spinner, print output and cost."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

from promptlab.core.json_types import JsonObject


def _generate_body(args: argparse.Namespace, template_id: str) -> JsonObject:
    body: JsonObject = {"templateId": template_id}
    if args.input is not None:
        try:
            parsed = json.loads(args.input)
        except ValueError:
            parsed = None
        body["input"] = parsed if isinstance(parsed, dict) else args.input
    if args.var:
        variables = dict(body["input"]) if isinstance(body.get("input"), dict) else {}
        for pair in args.var:
            name, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(f"--var takes name=value, not {pair!r}")
            variables[name] = value
        body["input"] = variables
    for field, value in (("provider", args.provider), ("model", args.model), ("maxTokens", args.max_tokens)):
        if value is not None:
            body[field] = value
    if args.priority:
        body["priority"] = args.priority
    return body


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
    from promptlab.cli.client import ApiError, Client, default_key

    client = Client(base_url=args.url, api_key=args.api_key or default_key())
    try:
        body = _generate_body(args, client.template_id(args.template))
        job = client.call("POST", "/generate", body)
        if args.wait and job["status"] not in {"completed", "failed", "cancelled"}:
            with _Spinner(f"{job['id']} {job['status']}…"):
                job = client.wait(job["id"])
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    elif job["status"] == "completed":
        print(job.get("output") or "")
    elif not args.wait:
        print(job["id"])
    summary = f"{job['id']} {job['status']}"
    if job["status"] == "completed":
        tokens = f"{job.get('inputTokens') or 0} in / {job.get('outputTokens') or 0} out tokens"
        cost = job.get("estimatedCostUSD")
        price = "cost unknown" if cost is None else f"${cost}"
        saved = f", cache hit (saved ${job['savedCostUSD']})" if job.get("cacheHit") else ""
        summary += f" · {job.get('provider')}/{job.get('model')} · {tokens} · {price}{saved}"
    elif job.get("error"):
        summary += f" · {job['error'].get('code')}: {job['error'].get('message')}"
    print(summary, file=sys.stderr)
    return 0 if job["status"] in {"completed", "queued", "processing"} else 1


def register(sub: Any) -> None:
    """Add `generate`."""
    gen = sub.add_parser("generate", help="submit a generation over HTTP (and wait for its output)")
    gen.add_argument("template", help="a template id (tpl_…) or its exact name")
    gen.add_argument("--input", help="text for a one-variable template, or a JSON object of variables")
    gen.add_argument("--var", action="append", metavar="NAME=VALUE", help="one variable (repeatable)")
    gen.add_argument("--provider")
    gen.add_argument("--model")
    gen.add_argument("--max-tokens", type=int)
    gen.add_argument("--priority", choices=["high", "normal", "low", "economy"])
    gen.add_argument("--wait", action="store_true", help="long-poll until the job ends; print its output")
    gen.add_argument("--json", action="store_true", help="print the job as JSON")
    gen.add_argument("--url", default=os.environ.get("PROMPTLAB_URL", "http://127.0.0.1:3000"))
    gen.add_argument("--api-key", help="default: PROMPTLAB_API_KEY, else the local runner's development key")
    gen.set_defaults(func=cmd_generate)
