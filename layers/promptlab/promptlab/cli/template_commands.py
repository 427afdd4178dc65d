"""`promptlab templates …` and `promptlab jobs …`: what the README teaches, over HTTP (the client)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.cli.failures import UsageError

if TYPE_CHECKING:
    from promptlab.client import Client


def _client(args: argparse.Namespace) -> Client:
    from promptlab.client import Client

    return Client(args.url, args.api_key)


def _text(inline: str | None, path: str | None, what: str) -> str | None:
    if inline is not None and path is not None:
        raise UsageError(f"give --{what} or --{what}-file, not both")
    if path is None:
        return inline
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--{what}-file: {exc}") from None


def _content(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {"body": _text(args.body, args.body_file, "body"),
                              "system": _text(args.system, args.system_file, "system")}  # fmt: skip
    if args.schema_file:
        try:
            fields["variables_schema"] = json.loads(Path(args.schema_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--schema-file: {exc}") from None
    defaults = {"provider": args.provider, "model": args.model, "maxTokens": args.max_tokens}
    if any(v is not None for v in defaults.values()):
        fields["defaults"] = {k: v for k, v in defaults.items() if v is not None}
    return {k: v for k, v in fields.items() if v is not None}


def cmd_create(args: argparse.Namespace) -> int:
    fields = _content(args)
    if "body" not in fields:
        raise UsageError("give the template's body: --body TEXT or --body-file FILE")
    made = _client(args).templates.create(args.name, fields.pop("body"), **_camel_keys(fields))
    print(f"{made.id} {made.name} · version {made.version} · variables {', '.join(v.name for v in made.variables)}")
    return 0


def _camel_keys(fields: dict[str, Any]) -> dict[str, Any]:
    return {"variablesSchema" if k == "variables_schema" else k: v for k, v in fields.items()}


def cmd_version(args: argparse.Namespace) -> int:
    client = _client(args)
    template_id = client.templates.resolve(args.template).partition("@")[0]
    fields = _content(args)
    if not fields:
        raise UsageError("nothing to change: give --body, --body-file, --system, --schema-file or a default")
    made = client.templates.update(template_id, **fields)
    print(f"{made.id} {made.name} · version {made.version}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for template in _client(args).templates.list(q=args.q):
        print(f"{template.id}  v{template.version:<4} {template.name}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    client = _client(args)
    template = client.templates.get(client.templates.resolve(args.template))
    if args.json:
        print(template.model_dump_json(by_alias=True, indent=2, exclude_none=True))
        return 0
    print(f"{template.id} {template.name} · version {template.version}")
    if template.system:
        print(f"\nsystem:\n{template.system}")
    print(f"\nbody:\n{template.body}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    client = _client(args)
    template_id = client.templates.resolve(args.template).partition("@")[0]
    labels = client.templates.set_label(template_id, args.label, args.version, protected=args.protect or None)
    moved = next(label for label in labels.labels if label.label == args.label)
    note = " (protected)" if moved.protected else ""
    print(f"{template_id} @{moved.label} → version {moved.version}{note}")
    return 0


def cmd_jobs_list(args: argparse.Namespace) -> int:
    client = _client(args)
    filters = {"status": args.status, "provider": args.provider}
    if args.template:
        filters["template_id"] = client.templates.resolve(args.template).partition("@")[0]
    for count, job in enumerate(client.jobs.list(**{k: v for k, v in filters.items() if v})):
        if count >= args.limit:
            break
        cost = "—" if job.estimated_cost_usd is None else f"${job.estimated_cost_usd}"
        print(f"{job.id}  {job.status:<10} {job.provider}/{job.model}  {cost}  {job.created_at:%Y-%m-%d %H:%M:%S}")
    return 0


def cmd_jobs_show(args: argparse.Namespace) -> int:
    job = _client(args).jobs.get(args.id)
    if args.json:
        print(job.model_dump_json(by_alias=True, indent=2, exclude_none=True))
        return 0
    print(f"{job.id} {job.status} · {job.provider}/{job.model} · attempts {job.attempts}/{job.max_attempts}")
    if job.error:
        print(f"error: {job.error.code}: {job.error.message}", file=sys.stderr)
    if job.output:
        print(job.output)
    return 0 if job.status != "failed" else 1


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    job = _client(args).jobs.cancel(args.id)
    print(f"{job.id} {job.status}")
    return 0


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    job = _client(args).jobs.retry(args.id)
    print(f"{job.id} {job.status} (attempts {job.attempts}/{job.max_attempts})")
    return 0


def _http(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--url", default=os.environ.get("PROMPTLAB_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", help="default: PROMPTLAB_API_KEY, else the local runner's development key")
    return parser


def _content_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--body", help="the template's text ({{ variables }} are found for you)")
    parser.add_argument("--body-file", help="read the body from a file")
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument("--system-file")
    parser.add_argument("--schema-file", help="a JSON Schema of the variables (types, enums, defaults)")
    parser.add_argument("--provider")
    parser.add_argument("--model")
    parser.add_argument("--max-tokens", type=int)


def register(sub: Any) -> None:
    """Add `templates` and `jobs`."""
    templates = sub.add_parser("templates", help="create, version, label and read templates")
    actions = templates.add_subparsers(dest="action", required=True)
    create = _http(actions.add_parser("create", help="a new template (version 1)"))
    create.add_argument("name")
    _content_options(create)
    create.set_defaults(func=cmd_create)
    version = _http(actions.add_parser("version", help="a new version: the given parts replaced"))
    version.add_argument("template", help="an id or exact name")
    _content_options(version)
    version.set_defaults(func=cmd_version)
    listing = _http(actions.add_parser("list", help="live templates, newest first"))
    listing.add_argument("--q", help="names or descriptions containing this")
    listing.set_defaults(func=cmd_list)
    show = _http(actions.add_parser("show", help="a template (or the version a label names)"))
    show.add_argument("template", help="an id or exact name, with @label or @version")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)
    label = _http(actions.add_parser("label", help="point a label at a version"))
    label.add_argument("template")
    label.add_argument("label")
    label.add_argument("version", type=int)
    label.add_argument("--protect", action="store_true", help="only labels:write keys may move it afterwards")
    label.set_defaults(func=cmd_label)

    jobs = sub.add_parser("jobs", help="list, read, cancel and retry jobs")
    job_actions = jobs.add_subparsers(dest="action", required=True)
    jobs_list = _http(job_actions.add_parser("list", help="jobs, newest first"))
    jobs_list.add_argument("--status", choices=["queued", "processing", "completed", "failed", "cancelled"])
    jobs_list.add_argument("--template", help="a template id or name")
    jobs_list.add_argument("--provider")
    jobs_list.add_argument("--limit", type=int, default=20)
    jobs_list.set_defaults(func=cmd_jobs_list)
    for name, func, helptext in (
        ("show", cmd_jobs_show, "a job, its output or its error"),
        ("cancel", cmd_jobs_cancel, "cancel a queued or running job"),
        ("retry", cmd_jobs_retry, "run a failed or cancelled job again"),
    ):
        action = _http(job_actions.add_parser(name, help=helptext))
        action.add_argument("id")
        if name == "show":
            action.add_argument("--json", action="store_true")
        action.set_defaults(func=func)
