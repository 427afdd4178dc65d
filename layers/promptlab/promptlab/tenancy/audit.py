"""The audit log: every change an API key (or the CLI) makes, append-only and hash-chained.

A row says who (key id and name), what (the action on a target, before → after), when and in which request.
It never holds prompt text, outputs or secrets: callers pass names, versions, limits and counts only.
"""

from __future__ import annotations

from typing import Any

from promptlab.core.clock import utc_now
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import correlation_id
from promptlab.core.pagination import decode_cursor, encode_cursor
from promptlab.db import audit_repo
from promptlab.db.audit_repo import GENESIS, AuditEntry
from promptlab.db.connection import connection
from promptlab.tenancy.auth import Principal

ACTIONS = (
    "template.created", "template.versioned", "template.archived", "template.restored", "label.moved",
    "key.created", "key.revoked", "key.rotated", "key.updated", "job.purged", "dlq.redriven",
    "experiment.promoted", "dataset.deleted", "webhook.changed",
)  # fmt: skip


def record(
    principal: Principal,
    action: str,
    target_type: str,
    target_id: str,
    *,
    before: JsonObject | None = None,
    after: JsonObject | None = None,
) -> AuditEntry:
    """Append one change made by `principal` (its key id and name) in the current request."""
    assert action in ACTIONS, action
    entry = AuditEntry(
        tenant_id=principal.tenant_id, at=utc_now(), key_id=principal.key_id, key_name=principal.key_name,
        action=action, target_type=target_type, target_id=target_id, before=before, after=after,
        request_id=correlation_id(),
    )  # fmt: skip
    with connection() as conn:
        return audit_repo.append(conn, entry)


def entries(
    *, tenant_id: str, limit: int, cursor: str | None, filters: dict[str, Any]
) -> tuple[list[AuditEntry], str | None]:
    """A page of the tenant's log, newest first, and the cursor of the next page."""
    after = decode_cursor(cursor)
    with connection() as conn:
        rows = audit_repo.page(
            conn, tenant_id=tenant_id, limit=limit + 1, before_id=int(after) if after else None, filters=filters
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(str(rows[-1].id)) if more and rows else None


def verify(tenant_id: str | None = None) -> list[str]:
    """Every break in the chain: a row whose hash is not its content's, or that does not follow its
    predecessor. Empty when the log is intact. Rows dropped by retention start a tenant's chain anew."""
    problems: list[str] = []
    with connection() as conn:
        rows = audit_repo.chain(conn, tenant_id=tenant_id)
    previous: dict[str, AuditEntry] = {}
    for row in rows:
        before = previous.get(row.tenant_id)
        expected_prev = before.hash if before is not None else row.prev_hash
        if before is None and row.prev_hash != GENESIS:
            expected_prev = row.prev_hash  # the first row kept after a retention sweep
        if row.prev_hash != expected_prev:
            problems.append(f"row {row.id} ({row.tenant_id}) does not follow row {before.id if before else '-'}")
        if row.digest(row.prev_hash) != row.hash:
            problems.append(f"row {row.id} ({row.tenant_id}) was changed after it was written")
        previous[row.tenant_id] = row
    return problems


def purge(days: int) -> int:
    """Drop rows older than the retention."""
    with connection() as conn:
        return audit_repo.purge_older_than(conn, days=days)
