"""`promptlab`: run the local stack, invoke functions, migrate the database, print the OpenAPI document."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def _overrides(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--parameter-overrides takes Key=Value pairs, not {pair!r}")
        result[key] = value
    return result


def cmd_local(args: argparse.Namespace) -> int:
    from promptlab.local.runner import LocalRunner, find_template

    runner = LocalRunner(
        template=args.template or find_template(),
        host=args.host,
        port=args.port,
        parameter_overrides=_overrides(args.parameter_overrides),
        schedule_speedup=args.schedule_speedup,
        sqs_port=args.sqs_port,
        http_workers=args.http_workers,
        gateway_only=args.gateway_only,
        run_pollers=not args.gateway_only,
    )
    runner.start()
    assert runner.stack is not None
    if args.gateway_only:
        _wait_for_stop()
        runner.stop()
        return 0
    print(f"PromptLab local stack on {runner.url}  (template: {runner.template})", flush=True)
    for note in runner.notes:
        print(f"  {note}", flush=True)
    for route in sorted(runner.stack.routes, key=lambda r: (r.path, r.method)):
        print(f"  {route.method:7} {runner.url}{route.path}  → {route.function}", flush=True)
    print(f"  SQS endpoint: {runner.sqs_endpoint}", flush=True)
    for logical_id, url in runner.stack.queue_urls.items():
        consumers = [m.function for m in runner.stack.mappings if m.queue_logical_id == logical_id]
        print(f"  queue {url}  → {', '.join(consumers) or '(no consumer)'}", flush=True)
    print(f"  endpoints saved to {runner.state_file} (used by `promptlab dlq …`)", flush=True)
    print("Ready. Ctrl-C stops.", flush=True)
    _wait_for_stop()
    runner.stop()
    return 0


def _wait_for_stop() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()


def cmd_invoke(args: argparse.Namespace) -> int:
    from promptlab.local.runner import LocalRunner, find_template

    event: dict[str, Any] = json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
    runner = LocalRunner(
        template=args.template or find_template(),
        parameter_overrides=_overrides(args.parameter_overrides),
        serve_http=False,
        run_pollers=False,
    )
    with runner:
        result = runner.invoke(args.function, event)
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from promptlab.db.migrate import migrate

    applied = migrate(args.database_url)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def _use_local_stack() -> None:
    """Fill unset endpoints from a running `promptlab local` (its state file), like an AWS profile would."""
    from promptlab.local.runner import LocalRunner

    runner = LocalRunner(template=Path("template.yaml"))
    if runner.state_file.is_file():
        for key, value in json.loads(runner.state_file.read_text()).items():
            os.environ.setdefault(key, value)


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from promptlab.jobs.dead_letters import list_dead_letters

    _use_local_stack()
    letters = list_dead_letters(limit=args.limit)
    if args.json:
        print(json.dumps([letter.model_dump(mode="json", by_alias=True) for letter in letters], indent=2))
        return 0
    if not letters:
        print("no dead letters")
    for letter in letters:
        state = f"redriven {letter.redriven_at:%Y-%m-%d %H:%M}" if letter.redriven_at else "open"
        print(f"{letter.dead_lettered_at:%Y-%m-%d %H:%M:%S}  {letter.job_id or '(no job)'}  [{state}]  {letter.reason}")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    from promptlab.jobs.dead_letters import redrive

    _use_local_stack()
    result = redrive(tenant_id=None, job_id=args.job, limit=args.limit)
    print(f"redriven: {len(result.redriven)}" + "".join(f"\n  {job_id}" for job_id in result.redriven))
    return 0


def _generate_body(args: argparse.Namespace, template_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"templateId": template_id}
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


def cmd_openapi(args: argparse.Namespace) -> int:
    from promptlab.api.app import openapi_document

    text = json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_pricing(args: argparse.Namespace) -> int:
    from promptlab.providers.pricing import price_table

    rows = price_table()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    columns = [
        "provider",
        "model",
        "input",
        "output",
        "cacheRead",
        "cacheWrite5m",
        "batchInput",
        "batchOutput",
    ]
    _print_table(columns, rows, note="   (USD per million tokens)")
    return 0


def _print_table(columns: list[str], rows: list[dict[str, Any]], note: str = "") -> None:
    """Rows as aligned columns; a missing or null cell prints as `-`."""

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        return "-" if value is None else str(value)

    widths = [max(len(c), *(len(cell(r, c)) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + note)
    for row in rows:
        print("  ".join(cell(row, c).ljust(w) for c, w in zip(columns, widths, strict=True)))


def cmd_keys_create(args: argparse.Namespace) -> int:
    from promptlab.tenancy.auth import create_key

    _use_local_stack()
    made = create_key(
        name=args.name, tenant_id=args.tenant, rpm_limit=args.rpm, monthly_budget_usd=args.monthly_budget_usd
    )
    if args.json:
        print(json.dumps({"id": made.id, "name": made.name, "key": made.key, "tenantId": made.tenant_id}))
        return 0
    print(f"key {made.id} ({made.name}) for tenant {made.tenant_id}:\n\n  {made.key}\n")
    print("This is the only time the key is shown; only its hash is stored.")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from promptlab.tenancy.auth import list_keys

    _use_local_stack()
    rows = [listing.as_dict() for listing in list_keys()]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        row["state"] = "revoked" if row["revoked_at"] else "live"
        row["created_at"] = f"{row['created_at']:%Y-%m-%d %H:%M}"
    columns = ["id", "name", "tenant_id", "prefix", "state", "rpm_limit", "monthly_budget_usd", "spent_usd"]
    _print_table([*columns, "reserved_usd", "created_at"], rows)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from promptlab.tenancy.auth import revoke_key

    _use_local_stack()
    revoked = revoke_key(args.key)
    print(f"revoked {revoked.id} ({revoked.name})")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from promptlab.db import keys_repo
    from promptlab.db.connection import connection

    _use_local_stack()
    days = None if args.days == "off" else int(args.days)
    if days is not None and days < 1:
        raise SystemExit("--days takes a number of days ≥ 1, or off")
    with connection() as conn:
        if not keys_repo.set_retention(conn, tenant_id=args.tenant, days=days):
            raise SystemExit(f"no tenant {args.tenant!r}")
    kept = f"{days} days after they finish" if days else "until deleted"
    print(f"tenant {args.tenant}: inputs and outputs are kept {kept} (the sweeper purges them)")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from promptlab.tenancy.usage import usage_report

    _use_local_stack()
    report = usage_report(tenant_id=args.tenant, start=args.start, end=args.end, group_by=args.group_by)
    if args.json:
        print(report.model_dump_json(by_alias=True, indent=2))
        return 0
    print(f"usage of tenant {args.tenant} from {report.from_:%Y-%m-%d %H:%M} to {report.to:%Y-%m-%d %H:%M} UTC")
    rows = [row.model_dump(mode="json", by_alias=True) for row in [*report.items, report.totals]]
    columns = ["key", "requests", "completed", "failed", "cacheHits", "inputTokens", "outputTokens"]
    _print_table([*columns, "costUSD", "savedUSD", "avgLatencyMs"], rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the stack from template.yaml without Docker")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=3000)
    local.add_argument("--template", type=Path)
    local.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    local.add_argument("--schedule-speedup", type=float, default=1.0, help="fire schedules N times faster")
    local.add_argument("--sqs-port", type=int, default=None, help="fix the local SQS endpoint's port")
    local.add_argument(
        "--http-workers", type=int, default=1, help="processes serving HTTP on the port (threads share one GIL)"
    )
    local.add_argument("--gateway-only", action="store_true", help=argparse.SUPPRESS)
    local.set_defaults(func=cmd_local)

    invoke = sub.add_parser("invoke", help="invoke one function with an event file, like `sam local invoke`")
    invoke.add_argument("function", help="the function's logical id in template.yaml, e.g. ApiFunction")
    invoke.add_argument("-e", "--event", required=True, help="event JSON file, or - for standard input")
    invoke.add_argument("--template", type=Path)
    invoke.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    invoke.set_defaults(func=cmd_invoke)

    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    mig = db_sub.add_parser("migrate", help="apply pending migrations (idempotent, advisory-locked)")
    mig.add_argument("--database-url", default=None)
    mig.set_defaults(func=cmd_migrate)

    dlq = sub.add_parser("dlq", help="dead-lettered jobs")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", help="each dead letter with its reason")
    dlq_list.add_argument("--limit", type=int, default=100)
    dlq_list.add_argument("--json", action="store_true")
    dlq_list.set_defaults(func=cmd_dlq_list)
    dlq_redrive = dlq_sub.add_parser("redrive", help="send dead-lettered jobs again with a fresh attempt budget")
    dlq_redrive.add_argument("--job", help="only this job id")
    dlq_redrive.add_argument("--limit", type=int, default=100)
    dlq_redrive.set_defaults(func=cmd_dlq_redrive)

    gen = sub.add_parser("generate", help="submit a generation over HTTP (and wait for its output)")
    gen.add_argument("template", help="a template id (tpl_…) or its exact name")
    gen.add_argument("--input", help="text for a one-variable template, or a JSON object of variables")
    gen.add_argument("--var", action="append", metavar="NAME=VALUE", help="one variable (repeatable)")
    gen.add_argument("--provider")
    gen.add_argument("--model")
    gen.add_argument("--max-tokens", type=int)
    gen.add_argument("--priority", choices=["high", "normal", "low"])
    gen.add_argument("--wait", action="store_true", help="long-poll until the job ends; print its output")
    gen.add_argument("--json", action="store_true", help="print the job as JSON")
    gen.add_argument("--url", default=os.environ.get("PROMPTLAB_URL", "http://127.0.0.1:3000"))
    gen.add_argument("--api-key", help="default: PROMPTLAB_API_KEY, else the local runner's development key")
    gen.set_defaults(func=cmd_generate)

    keys = sub.add_parser("keys", help="API keys (each belongs to a tenant)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", help="add the key to this tenant (rotation); default: a new tenant")
    create.add_argument("--rpm", type=int, help="requests per rate-limit window (60 s) for this key")
    create.add_argument("--monthly-budget-usd", type=Decimal, help="monthly spend limit, reserved at submit")
    create.add_argument("--json", action="store_true", help='print {"id", "name", "key", "tenantId"}')
    create.set_defaults(func=cmd_keys_create)
    keys_list = keys_sub.add_parser("list", help="every key with its limits and this month's spend")
    keys_list.add_argument("--json", action="store_true")
    keys_list.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    revoke.set_defaults(func=cmd_keys_revoke)

    tenants = sub.add_parser("tenants", help="tenant settings")
    tenants_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    retention = tenants_sub.add_parser("retention", help="purge inputs and outputs N days after jobs finish")
    retention.add_argument("--tenant", default="default")
    retention.add_argument("--days", required=True, help="days to keep, or off")
    retention.set_defaults(func=cmd_retention)

    usage = sub.add_parser("usage", help="requests, cache hits, tokens, cost and savings as a table")
    usage.add_argument("--tenant", default="default")
    usage.add_argument("--from", dest="start", type=datetime.fromisoformat, help="inclusive; default: month start")
    usage.add_argument("--to", dest="end", type=datetime.fromisoformat, help="exclusive; default: now")
    usage.add_argument("--group-by", choices=["day", "provider", "model", "template"], default="day")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=cmd_usage)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument("-o", "--output")
    openapi.set_defaults(func=cmd_openapi)

    pricing = sub.add_parser("pricing", help="print the model price table")
    pricing.add_argument("--json", action="store_true")
    pricing.set_defaults(func=cmd_pricing)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `promptlab` command."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code

