"""Reading the economy lane's provider batches (the API side; the lane itself is `economy`)."""

from __future__ import annotations

from promptlab.core.errors import NotFound
from promptlab.core.pagination import decode_cursor, encode_cursor
from promptlab.db import batches_repo
from promptlab.db.connection import connection
from promptlab.models.batches import BatchPage, BatchPublic


def list_batches(*, tenant_id: str, limit: int, cursor: str | None) -> BatchPage:
    """A tenant's provider batches, newest first."""
    with connection() as conn:
        rows = batches_repo.list_batches(conn, tenant_id=tenant_id, limit=limit + 1, after_id=decode_cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    return BatchPage(items=[r.public() for r in rows], next_cursor=encode_cursor(rows[-1].id) if more else None)


def get_batch(*, tenant_id: str, batch_id: str) -> BatchPublic:
    """One of the tenant's provider batches, or 404."""
    with connection() as conn:
        row = batches_repo.get_batch(conn, tenant_id=tenant_id, batch_id=batch_id)
    if row is None:
        raise NotFound(f"batch {batch_id!r} not found", details={"batchId": batch_id})
    return row.public()
