"""Every SQL statement about tenants, API keys and their monthly budgets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from promptlab.db.connection import Connection

Row = dict[str, Any]


def ensure_tenant(conn: Connection, *, tenant_id: str, name: str) -> None:
    """Create the tenant unless it exists."""
    conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING", (tenant_id, name))


def tenant_exists(conn: Connection, *, tenant_id: str) -> bool:
    """Whether the tenant is known."""
    return conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant_id,)).fetchone() is not None


def set_retention(conn: Connection, *, tenant_id: str, days: int | None) -> bool:
    """Set (or clear, with None) how long a tenant's inputs and outputs are kept."""
    cur = conn.execute("UPDATE tenants SET retention_days = %s WHERE id = %s", (days, tenant_id))
    return cur.rowcount == 1


def insert_key(conn: Connection, key: Row) -> Row:
    """Store a key (its hash, never the key)."""
    row = conn.execute(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, rpm_limit, monthly_budget_usd)"
        " VALUES (%(id)s, %(tenant_id)s, %(name)s, %(key_hash)s, %(prefix)s, %(rpm_limit)s, %(monthly_budget_usd)s)"
        " RETURNING *",
        key,
    ).fetchone()
    assert row is not None
    return row


def key_state(conn: Connection, *, key_hash: str) -> str:
    """`live`, `revoked` or `unknown`."""
    row = conn.execute("SELECT revoked_at FROM api_keys WHERE key_hash = %s", (key_hash,)).fetchone()
    if row is None:
        return "unknown"
    return "live" if row["revoked_at"] is None else "revoked"


def key_by_hash(conn: Connection, *, key_hash: str) -> Row | None:
    """The live key with this hash, or None."""
    return conn.execute("SELECT * FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", (key_hash,)).fetchone()


def list_keys(conn: Connection) -> list[Row]:
    """Every key, oldest first, with this month's budget use."""
    return conn.execute(
        "SELECT k.*, b.spent_usd, b.reserved_usd FROM api_keys k LEFT JOIN key_budgets b"
        " ON b.key_id = k.id AND b.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date"
        " ORDER BY k.created_at, k.id"
    ).fetchall()


def revoke_key(conn: Connection, *, key: str) -> Row | None:
    """Revoke a key by id or prefix; None when no live key matches."""
    return conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE (id = %s OR prefix = %s) AND revoked_at IS NULL RETURNING *",
        (key, key),
    ).fetchone()


def reserve(conn: Connection, *, key_id: str, month: date, amount: Decimal, limit: Decimal) -> Row:
    """Reserve `amount` against the key's budget for the month when it fits.

    Returns the budget row; `granted` says whether the amount was reserved. The row lock taken by the
    UPDATE serialises concurrent reservations, so they can never overspend together.
    """
    conn.execute("INSERT INTO key_budgets (key_id, month) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key_id, month))
    row = conn.execute(
        "UPDATE key_budgets SET reserved_usd = reserved_usd + %(amount)s"
        " WHERE key_id = %(key_id)s AND month = %(month)s AND spent_usd + reserved_usd + %(amount)s <= %(limit)s"
        " RETURNING spent_usd, reserved_usd, true AS granted",
        {"key_id": key_id, "month": month, "amount": amount, "limit": limit},
    ).fetchone()
    if row is not None:
        return row
    current = conn.execute(
        "SELECT spent_usd, reserved_usd, false AS granted FROM key_budgets WHERE key_id = %s AND month = %s",
        (key_id, month),
    ).fetchone()
    assert current is not None
    return current


def release(conn: Connection, *, key_id: str, month: date, amount: Decimal) -> None:
    """Give back a reservation that no job took (the request joined a job already in flight)."""
    conn.execute(
        "UPDATE key_budgets SET reserved_usd = reserved_usd - %s WHERE key_id = %s AND month = %s",
        (amount, key_id, month),
    )


def budget(conn: Connection, *, key_id: str, month: date) -> Row | None:
    """The key's spend and reservations for a month."""
    return conn.execute(
        "SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s AND month = %s", (key_id, month)
    ).fetchone()
