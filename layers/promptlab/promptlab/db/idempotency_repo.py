"""Every SQL statement about idempotency keys."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from promptlab.db.connection import Connection, Row


def claim_key(conn: Connection, *, tenant_id: str, key: str, body_hash: str, ttl_seconds: int) -> Row | None:
    """Take the key for this request; None when another request holds it (or did, within the TTL)."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM idempotency_keys WHERE tenant_id = %s AND key = %s AND expires_at <= now()", (tenant_id, key)
        )
        return conn.execute(
            "INSERT INTO idempotency_keys (tenant_id, key, body_hash, expires_at)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s)) ON CONFLICT DO NOTHING RETURNING *",
            (tenant_id, key, body_hash, ttl_seconds),
        ).fetchone()


def get_key(conn: Connection, *, tenant_id: str, key: str) -> Row | None:
    """The stored key, its body hash and (once finished) its answer."""
    return conn.execute(
        "SELECT * FROM idempotency_keys WHERE tenant_id = %s AND key = %s AND expires_at > now()", (tenant_id, key)
    ).fetchone()


def save_answer(conn: Connection, *, tenant_id: str, key: str, status_code: int, response: Any) -> None:
    """Keep the answer to replay."""
    conn.execute(
        "UPDATE idempotency_keys SET status_code = %s, response = %s WHERE tenant_id = %s AND key = %s",
        (status_code, Jsonb(response), tenant_id, key),
    )


def release_key(conn: Connection, *, tenant_id: str, key: str) -> None:
    """Forget a key whose request failed, so the client can try again with it."""
    conn.execute("DELETE FROM idempotency_keys WHERE tenant_id = %s AND key = %s", (tenant_id, key))
