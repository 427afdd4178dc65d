"""Administration commands: API keys, tenant retention, usage, the price table and the OpenAPI document."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from promptlab.cli.stack_commands import use_local_stack
from promptlab.core.json_types import JsonObject


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


def _print_table(columns: list[str], rows: list[JsonObject], note: str = "") -> None:
    """Rows as aligned columns; a missing or null cell prints as `-`."""

    def cell(row: JsonObject, column: str) -> str:
        value = row.get(column)
        return "-" if value is None else str(value)

    widths = [max(len(c), *(len(cell(r, c)) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + note)
    for row in rows:
        print("  ".join(cell(row, c).ljust(w) for c, w in zip(columns, widths, strict=True)))


CLI = "cli"  # who the audit log names for a change made with the CLI (it holds no key)


def cmd_keys_create(args: argparse.Namespace) -> int:
    from promptlab.core.scopes import check_scopes
    from promptlab.tenancy import audit
    from promptlab.tenancy.auth import Principal, create_key

    use_local_stack()
    scopes = check_scopes(args.scope) if args.scope else None
    made = create_key(
        name=args.name, tenant_id=args.tenant, rpm_limit=args.rpm, monthly_budget_usd=args.monthly_budget_usd,
        scopes=scopes,
    )  # fmt: skip
    audit.record(Principal(tenant_id=made.tenant_id, key_name=CLI), "key.created", "key", made.id,
                 after={"name": made.name, "prefix": made.key[:11], "scopes": scopes})  # fmt: skip
    if args.json:
        print(json.dumps({"id": made.id, "name": made.name, "key": made.key, "tenantId": made.tenant_id}))
        return 0
    print(f"key {made.id} ({made.name}) for tenant {made.tenant_id}:\n\n  {made.key}\n")
    print("This is the only time the key is shown; only its hash is stored.")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from promptlab.tenancy.auth import list_keys

    use_local_stack()
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

    use_local_stack()
    from promptlab.tenancy import audit
    from promptlab.tenancy.auth import Principal

    revoked = revoke_key(args.key)
    audit.record(Principal(tenant_id=revoked.tenant_id, key_name=CLI), "key.revoked", "key", revoked.id,
                 before={"name": revoked.name, "prefix": revoked.prefix})  # fmt: skip
    print(f"revoked {revoked.id} ({revoked.name})")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from promptlab.tenancy import audit

    use_local_stack()
    problems = audit.verify(args.tenant)
    for problem in problems:
        print(problem)
    print("the audit log is intact" if not problems else f"{len(problems)} problem(s): the log was changed")
    return 0 if not problems else 1


def cmd_retention(args: argparse.Namespace) -> int:
    from promptlab.db import keys_repo
    from promptlab.db.connection import connection

    use_local_stack()
    days = None if args.days == "off" else int(args.days)
    if days is not None and days < 1:
        raise SystemExit("--days takes a number of days ≥ 1, or off")
    with connection() as conn:
        if not keys_repo.set_retention(conn, tenant_id=args.tenant, days=days):
            raise SystemExit(f"no tenant {args.tenant!r}")
    kept = f"{days} days after they finish" if days else "until deleted"
    print(f"tenant {args.tenant}: inputs and outputs are kept {kept} (the sweeper purges them)")
    return 0


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    from promptlab.tenancy import webhook_signing

    use_local_stack()
    if args.rotate:
        secret = webhook_signing.rotate(args.tenant)
        print(f"tenant {args.tenant}: new webhook signing secret (the old one also signs for 24 h):")
    else:
        secret = webhook_signing.signing_keys(args.tenant).current
        print(f"tenant {args.tenant}: webhook signing secret (Standard Webhooks; verify `webhook-signature` with it):")
    print(secret)
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from promptlab.tenancy.usage import usage_report

    use_local_stack()
    report = usage_report(tenant_id=args.tenant, start=args.start, end=args.end, group_by=args.group_by)
    if args.json:
        print(report.model_dump_json(by_alias=True, indent=2))
        return 0
    print(f"usage of tenant {args.tenant} from {report.from_:%Y-%m-%d %H:%M} to {report.to:%Y-%m-%d %H:%M} UTC")
    rows = [row.model_dump(mode="json", by_alias=True) for row in [*report.items, report.totals]]
    columns = ["key", "requests", "completed", "failed", "cacheHits", "inputTokens", "outputTokens"]
    _print_table([*columns, "costUSD", "savedUSD", "avgLatencyMs"], rows)
    return 0


def register(sub: Any) -> None:
    """Add `keys`, `tenants retention|webhook-secret`, `usage`, `openapi` and `pricing`."""
    keys = sub.add_parser("keys", help="API keys (each belongs to a tenant)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--tenant", help="add the key to this tenant (rotation); default: a new tenant")
    create.add_argument("--rpm", type=int, help="requests per rate-limit window (60 s) for this key")
    create.add_argument("--monthly-budget-usd", type=Decimal, help="monthly spend limit, reserved at submit")
    create.add_argument("--scope", action="append", help="a scope the key holds (repeat); default: every scope")
    create.add_argument("--json", action="store_true", help='print {"id", "name", "key", "tenantId"}')
    create.set_defaults(func=cmd_keys_create)
    keys_list = keys_sub.add_parser("list", help="every key with its limits and this month's spend")
    keys_list.add_argument("--json", action="store_true")
    keys_list.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or prefix")
    revoke.add_argument("key")
    revoke.set_defaults(func=cmd_keys_revoke)

    audit_log = sub.add_parser("audit", help="the audit log")
    audit_sub = audit_log.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the log's hash chain (exit 1 when a row was changed)")
    verify.add_argument("--tenant", help="one tenant's log; default: every tenant's")
    verify.set_defaults(func=cmd_audit_verify)

    tenants = sub.add_parser("tenants", help="tenant settings")
    tenants_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    retention = tenants_sub.add_parser("retention", help="purge inputs and outputs N days after jobs finish")
    retention.add_argument("--tenant", default="default")
    retention.add_argument("--days", required=True, help="days to keep, or off")
    retention.set_defaults(func=cmd_retention)
    signing = tenants_sub.add_parser("webhook-secret", help="show (made on first use) or rotate the webhook secret")
    signing.add_argument("--tenant", default="default")
    signing.add_argument("--rotate", action="store_true", help="make a new secret; the old one signs for 24 h more")
    signing.set_defaults(func=cmd_webhook_secret)

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
