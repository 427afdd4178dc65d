"""The audit log: append-only rows, each chained to the tenant's previous one by its hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from promptlab.core.json_types import JsonObject
from promptlab.db.connection import Connection

GENESIS = "0" * 64  # the previous hash of a tenant's first row


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change: who (key id and name), what (action on a target, before → after), when, which request."""

    tenant_id: str
    at: datetime
    key_id: str | None
    key_name: str | None
    action: str
    target_type: str
    target_id: str
    before: JsonObject | None
    after: JsonObject | None
    request_id: str | None
    id: int | None = None
    prev_hash: str = GENESIS
    hash: str = ""

    def digest(self, prev_hash: str) -> str:
        """The row's hash: SHA-256 of the previous row's hash and the row's content (canonical JSON)."""
        content = {
            "tenant_id": self.tenant_id, "at": self.at.isoformat(), "key_id": self.key_id, "key_name": self.key_name,
            "action": self.action, "target_type": self.target_type, "target_id": self.target_id,
            "before": self.before, "after": self.after, "request_id": self.request_id,
        }  # fmt: skip
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


def append(conn: Connection, entry: AuditEntry) -> AuditEntry:
    """Append a row after the tenant's last one (rows of one tenant are chained one at a time)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"audit:{entry.tenant_id}",))
        last = conn.execute(
            "SELECT hash FROM audit_log WHERE tenant_id = %s ORDER BY id DESC LIMIT 1", (entry.tenant_id,)
        ).fetchone()
        prev_hash = last["hash"] if last is not None else GENESIS
        digest = entry.digest(prev_hash)
        row = conn.execute(
            "INSERT INTO audit_log (tenant_id, at, key_id, key_name, action, target_type, target_id, before, after,"
            " request_id, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (entry.tenant_id, entry.at, entry.key_id, entry.key_name, entry.action, entry.target_type,
             entry.target_id, Jsonb(entry.before) if entry.before is not None else None,
             Jsonb(entry.after) if entry.after is not None else None, entry.request_id, prev_hash, digest),
        ).fetchone()  # fmt: skip
    assert row is not None
    return AuditEntry(**{**_fields(entry), "id": row["id"], "prev_hash": prev_hash, "hash": digest})


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in AuditEntry.__slots__}


def _entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(**row)


def page(
    conn: Connection, *, tenant_id: str, limit: int, before_id: int | None, filters: dict[str, Any]
) -> list[AuditEntry]:
    """Newest first, `limit` rows older than `before_id`, filtered by action, target or time."""
    sql = "SELECT * FROM audit_log WHERE tenant_id = %s"
    params: list[Any] = [tenant_id]
    for column in ("action", "target_type", "target_id", "key_id"):
        if filters.get(column):
            sql += f" AND {column} = %s"
            params.append(filters[column])
    if filters.get("from"):
        sql += " AND at >= %s"
        params.append(filters["from"])
    if filters.get("to"):
        sql += " AND at < %s"
        params.append(filters["to"])
    if before_id is not None:
        sql += " AND id < %s"
        params.append(before_id)
    sql += " ORDER BY id DESC LIMIT %s"
    params.append(limit)
    return [_entry(row) for row in conn.execute(sql.encode(), params).fetchall()]


def chain(conn: Connection, *, tenant_id: str | None) -> list[AuditEntry]:
    """Every row (of a tenant, or of all), in order, for verification."""
    if tenant_id is None:
        rows = conn.execute("SELECT * FROM audit_log ORDER BY tenant_id, id").fetchall()
    else:
        rows = conn.execute("SELECT * FROM audit_log WHERE tenant_id = %s ORDER BY id", (tenant_id,)).fetchall()
    return [_entry(row) for row in rows]


def purge_older_than(conn: Connection, *, days: int) -> int:
    """Retention: drop rows older than `days` (the one delete the log allows)."""
    with conn.transaction():
        conn.execute("SET LOCAL promptlab.audit_retention = 'on'")
        cur = conn.execute("DELETE FROM audit_log WHERE at < now() - make_interval(days => %s)", (days,))
    return cur.rowcount
