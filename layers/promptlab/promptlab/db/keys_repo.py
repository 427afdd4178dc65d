"""Every SQL statement about tenants, API keys and their monthly budgets."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from promptlab.db.connection import Connection
from promptlab.models.keys import ApiKey, BudgetUse, KeyListing


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


def set_events_url(conn: Connection, *, tenant_id: str, url: str | None) -> None:
    """Where the tenant's events go (None: nowhere)."""
    conn.execute("UPDATE tenants SET events_url = %s WHERE id = %s", (url, tenant_id))


def events_url(conn: Connection, *, tenant_id: str) -> str | None:
    row = conn.execute("SELECT events_url FROM tenants WHERE id = %s", (tenant_id,)).fetchone()
    return row["events_url"] if row is not None else None


def webhook_secrets(conn: Connection, *, tenant_id: str) -> tuple[str | None, str | None, datetime | None]:
    """(current, previous, rotated at) of a tenant's webhook signing secrets."""
    row = conn.execute(
        "SELECT webhook_secret, webhook_secret_previous, webhook_secret_rotated_at FROM tenants WHERE id = %s",
        (tenant_id,),
    ).fetchone()
    if row is None:
        return None, None, None
    return row["webhook_secret"], row["webhook_secret_previous"], row["webhook_secret_rotated_at"]


def set_first_webhook_secret(conn: Connection, *, tenant_id: str, secret: str) -> str | None:
    """Give a tenant its first signing secret unless it has one; returns the tenant's secret (None: no tenant)."""
    row = conn.execute(
        "UPDATE tenants SET webhook_secret = coalesce(webhook_secret, %s) WHERE id = %s RETURNING webhook_secret",
        (secret, tenant_id),
    ).fetchone()
    return row["webhook_secret"] if row is not None else None


def rotate_webhook_secret(conn: Connection, *, tenant_id: str, secret: str) -> bool:
    """Make `secret` the tenant's signing secret; the old one keeps signing for a grace period."""
    cur = conn.execute(
        "UPDATE tenants SET webhook_secret_previous = webhook_secret, webhook_secret = %s,"
        " webhook_secret_rotated_at = now() WHERE id = %s",
        (secret, tenant_id),
    )
    return cur.rowcount == 1


def insert_key(
    conn: Connection,
    *,
    key_id: str,
    tenant_id: str,
    name: str,
    key_hash: str,
    prefix: str,
    rpm_limit: int | None,
    monthly_budget_usd: Decimal | None,
    scopes: list[str] | None = None,
) -> ApiKey:
    """Store a key (its hash, never the key)."""
    row = conn.execute(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, rpm_limit, monthly_budget_usd, scopes)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
        (key_id, tenant_id, name, key_hash, prefix, rpm_limit, monthly_budget_usd, scopes),
    ).fetchone()
    assert row is not None
    return ApiKey.from_row(row)


def key_state(conn: Connection, *, key_hash: str) -> str:
    """`live`, `revoked` or `unknown`."""
    row = conn.execute(
        "SELECT revoked_at IS NULL OR revoked_at > now() AS live FROM api_keys WHERE key_hash = %s", (key_hash,)
    ).fetchone()
    if row is None:
        return "unknown"
    return "live" if row["live"] else "revoked"


def live_key_hashes(conn: Connection) -> list[str]:
    """The digests of every live key."""
    rows = conn.execute("SELECT key_hash FROM api_keys WHERE revoked_at IS NULL OR revoked_at > now()")
    return [r["key_hash"] for r in rows]


def key_by_hash(conn: Connection, *, key_hash: str) -> ApiKey | None:
    """The live key with this hash, or None."""
    row = conn.execute(
        "SELECT * FROM api_keys WHERE key_hash = %s AND (revoked_at IS NULL OR revoked_at > now())", (key_hash,)
    ).fetchone()
    return ApiKey.from_row(row) if row is not None else None


def key_by_id(conn: Connection, *, key_id: str) -> ApiKey | None:
    """A key by id, revoked or not (a revoked key's budget still holds what its jobs spend)."""
    row = conn.execute("SELECT * FROM api_keys WHERE id = %s", (key_id,)).fetchone()
    return ApiKey.from_row(row) if row is not None else None


def list_keys(conn: Connection, *, tenant_id: str | None = None) -> list[KeyListing]:
    """Every key (of a tenant, or of all), oldest first, with this month's spend: its budget's account, else
    the sum of its jobs' costs."""
    rows = conn.execute(
        "WITH month AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date AS start)"
        " SELECT k.*, b.spent_usd, b.reserved_usd, j.jobs_spent_usd FROM api_keys k CROSS JOIN month m"
        " LEFT JOIN key_budgets b ON b.key_id = k.id AND b.month = m.start"
        " LEFT JOIN LATERAL (SELECT coalesce(sum(estimated_cost_usd), 0) AS jobs_spent_usd FROM jobs"
        "   WHERE api_key_id = k.id AND created_at >= m.start AT TIME ZONE 'UTC') j ON b.key_id IS NULL"
        " WHERE %(tenant)s::text IS NULL OR k.tenant_id = %(tenant)s::text"
        " ORDER BY k.created_at, k.id",
        {"tenant": tenant_id},
    ).fetchall()
    listings = []
    for row in rows:
        spent, reserved, jobs_spent = row.pop("spent_usd"), row.pop("reserved_usd"), row.pop("jobs_spent_usd")
        if spent is not None:
            use = BudgetUse(spent_usd=spent, reserved_usd=reserved)
        else:  # no budget row this month: nothing is reserved, what its jobs cost is what it spent
            use = BudgetUse(spent_usd=jobs_spent if jobs_spent is not None else Decimal(0), reserved_usd=Decimal(0))
        listings.append(KeyListing(key=ApiKey.from_row(row), use=use))
    return listings


def tenant_key(conn: Connection, *, tenant_id: str, key_id: str) -> ApiKey | None:
    """A tenant's key by id (revoked or not), or None."""
    row = conn.execute("SELECT * FROM api_keys WHERE id = %s AND tenant_id = %s", (key_id, tenant_id)).fetchone()
    return ApiKey.from_row(row) if row is not None else None


def update_key(conn: Connection, *, tenant_id: str, key_id: str, changes: dict[str, Any]) -> ApiKey | None:
    """Change a live key's name, limit or budget (only the columns given); None when no such live key."""
    allowed = {"name", "rpm_limit", "monthly_budget_usd"}
    assert set(changes) <= allowed, changes
    sets = ", ".join(f"{column} = %({column})s" for column in changes) or "name = name"
    row = conn.execute(
        f"UPDATE api_keys SET {sets} WHERE id = %(id)s AND tenant_id = %(tenant)s"
        " AND (revoked_at IS NULL OR revoked_at > now()) RETURNING *".encode(),
        {**changes, "id": key_id, "tenant": tenant_id},
    ).fetchone()
    return ApiKey.from_row(row) if row is not None else None


def revoke_tenant_key(conn: Connection, *, tenant_id: str, key_id: str, after_seconds: int = 0) -> ApiKey | None:
    """End a tenant's live key now, or `after_seconds` from now (a rotation's overlap); None if none."""
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = now() + make_interval(secs => %s) WHERE id = %s AND tenant_id = %s"
        " AND (revoked_at IS NULL OR revoked_at > now()) RETURNING *",
        (after_seconds, key_id, tenant_id),
    ).fetchone()
    return ApiKey.from_row(row) if row is not None else None


def revoke_key(conn: Connection, *, key: str) -> ApiKey | None:
    """Revoke a key by id or prefix; None when no live key matches."""
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE (id = %s OR prefix = %s) AND revoked_at IS NULL RETURNING *",
        (key, key),
    ).fetchone()
    return ApiKey.from_row(row) if row is not None else None


def reserve(conn: Connection, *, key_id: str, month: date, amount: Decimal, limit: Decimal) -> tuple[bool, BudgetUse]:
    """Reserve `amount` against the key's budget for the month when it fits.

    Returns (granted, the budget's use after). The row lock taken by the UPDATE serialises concurrent
    reservations, so they can never overspend together.
    """
    conn.execute("INSERT INTO key_budgets (key_id, month) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key_id, month))
    row = conn.execute(
        "UPDATE key_budgets SET reserved_usd = reserved_usd + %(amount)s"
        " WHERE key_id = %(key_id)s AND month = %(month)s AND spent_usd + reserved_usd + %(amount)s <= %(limit)s"
        " RETURNING spent_usd, reserved_usd",
        {"key_id": key_id, "month": month, "amount": amount, "limit": limit},
    ).fetchone()
    granted = row is not None
    if row is None:
        row = conn.execute(
            "SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s AND month = %s", (key_id, month)
        ).fetchone()
        assert row is not None
    return granted, BudgetUse(spent_usd=row["spent_usd"], reserved_usd=row["reserved_usd"])


def release(conn: Connection, *, key_id: str, month: date, amount: Decimal) -> None:
    """Give back a reservation that no job took (the request joined a job already in flight)."""
    conn.execute(
        "UPDATE key_budgets SET reserved_usd = reserved_usd - %s WHERE key_id = %s AND month = %s",
        (amount, key_id, month),
    )
