"""Commands about the local stack: run it, invoke one function, migrate, and the dead-letter queue."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from promptlab.core.json_types import LambdaEvent


def _overrides(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--parameter-overrides takes Key=Value pairs, not {pair!r}")
        result[key] = value
    return result


def cmd_local(args: argparse.Namespace) -> int:
    from promptlab.local.cfn import find_template
    from promptlab.local.runner import LocalRunner

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
        report_invocations=not args.no_report,
    )
    stop = _stop_on_sigterm()  # before starting: a SIGTERM during start-up still stops it cleanly
    runner.start()
    assert runner.stack is not None
    if args.gateway_only:
        _wait_for(stop)
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
    _wait_for(stop)
    runner.stop()
    return 0


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _wait_for(stop: threading.Event) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()


def cmd_invoke(args: argparse.Namespace) -> int:
    from promptlab.local.cfn import find_template
    from promptlab.local.runner import LocalRunner

    event: LambdaEvent = json.loads(Path(args.event).read_text()) if args.event != "-" else json.load(sys.stdin)
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


def use_local_stack() -> None:
    """Fill unset endpoints from a running `promptlab local` (its state file), like an AWS profile would."""
    from promptlab.local.runner import LocalRunner

    runner = LocalRunner(template=Path("template.yaml"))
    if runner.state_file.is_file():
        for key, value in json.loads(runner.state_file.read_text()).items():
            os.environ.setdefault(key, value)


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from promptlab.jobs.dead_letters import list_dead_letters

    use_local_stack()
    letters = list_dead_letters(limit=args.limit, dismissed=args.all)
    if args.json:
        print(json.dumps([letter.model_dump(mode="json", by_alias=True) for letter in letters], indent=2))
        return 0
    if not letters:
        print("no dead letters")
    for letter in letters:
        state = "open"
        if letter.redriven_at:
            state = f"redriven {letter.redriven_at:%Y-%m-%d %H:%M}"
        elif letter.dismissed_at:
            state = f"dismissed {letter.dismissed_at:%Y-%m-%d %H:%M}"
        when = f"{letter.dead_lettered_at:%Y-%m-%d %H:%M:%S}"
        print(f"#{letter.id}  {when}  {letter.job_id or '(no job)'}  [{state}]  {letter.reason}")
    return 0


def cmd_dlq_dismiss(args: argparse.Namespace) -> int:
    from promptlab.cli.failures import UsageError
    from promptlab.jobs.dead_letters import dismiss

    if not args.ids and not args.all_without_job:
        raise UsageError("dlq dismiss takes dead-letter ids (#N in `promptlab dlq list`) or --all-without-job")
    use_local_stack()
    dismissed = dismiss(ids=args.ids, without_job=args.all_without_job)
    print(f"dismissed: {len(dismissed)}" + "".join(f"\n  #{i}" for i in dismissed))
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    from promptlab.jobs.dead_letters import redrive

    use_local_stack()
    result = redrive(tenant_id=None, job_id=args.job, limit=args.limit)
    print(f"redriven: {len(result.redriven)}" + "".join(f"\n  {job_id}" for job_id in result.redriven))
    return 0


def register(sub: Any) -> None:
    """Add `local`, `invoke`, `db migrate` and `dlq list|redrive|dismiss`."""
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
    local.add_argument("--no-report", action="store_true", help="no Lambda REPORT line per invocation")
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
    dlq_list.add_argument("--all", action="store_true", help="dismissed ones too")
    dlq_list.set_defaults(func=cmd_dlq_list)
    dlq_dismiss = dlq_sub.add_parser("dismiss", help="set dead letters aside: off the list, never redriven")
    dlq_dismiss.add_argument("ids", nargs="*", type=lambda v: int(v.lstrip("#")), help="ids from dlq list (#N)")
    dlq_dismiss.add_argument("--all-without-job", action="store_true", help="every open one that has no job")
    dlq_dismiss.set_defaults(func=cmd_dlq_dismiss)
    dlq_redrive = dlq_sub.add_parser("redrive", help="send dead-lettered jobs again with a fresh attempt budget")
    dlq_redrive.add_argument("--job", help="only this job id")
    dlq_redrive.add_argument("--limit", type=int, default=100)
    dlq_redrive.set_defaults(func=cmd_dlq_redrive)
