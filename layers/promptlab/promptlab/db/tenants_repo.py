"""Every SQL statement about tenants."""

from __future__ import annotations

from promptlab.db.connection import Connection


def tenant_exists(conn: Connection, *, tenant_id: str) -> bool:
    """Whether the tenant is known."""
    return conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant_id,)).fetchone() is not None
