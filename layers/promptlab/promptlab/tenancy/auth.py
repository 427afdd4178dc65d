"""API keys: create (shown once, stored as a hash), authenticate requests, list, revoke.

A key belongs to a tenant; every template and job belongs to the tenant, so rotating keys orphans
nothing. With auth off (`PROMPTLAB_AUTH=off`), every request acts for the `default` tenant.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from promptlab.core import ids
from promptlab.core.errors import NotFound, RateLimited, Unauthorized
from promptlab.core.settings import get_settings
from promptlab.db import keys_repo
from promptlab.db.connection import connection
from promptlab.infra import request_limits
from promptlab.models.keys import ApiKey, KeyListing

DEFAULT_TENANT = "default"
KEY_PREFIX = "pl_"


@dataclass(frozen=True)
class Principal:
    """Who a request acts for."""

    tenant_id: str
    key_id: str | None = None
    key_name: str | None = None
    rpm_limit: int | None = None
    monthly_budget_usd: Decimal | None = None
    scopes: frozenset[str] | None = None  # None: every scope


ANONYMOUS = Principal(tenant_id=DEFAULT_TENANT)


@dataclass(frozen=True)
class NewKey:
    """A key just made: the only moment its secret exists outside the client."""

    id: str
    name: str
    tenant_id: str
    key: str


def hash_key(key: str) -> str:
    """What is stored of a key (SHA-256; keys are 160 random bits, so no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    *,
    name: str,
    tenant_id: str | None = None,
    rpm_limit: int | None = None,
    monthly_budget_usd: Decimal | None = None,
    key: str | None = None,
    scopes: list[str] | None = None,
) -> NewKey:
    """Make a key for a tenant (a new tenant named after the key unless one is given)."""
    secret = key or KEY_PREFIX + secrets.token_urlsafe(20)
    tenant = tenant_id or ids.tenant_id()
    with connection() as conn, conn.transaction():
        keys_repo.ensure_tenant(conn, tenant_id=tenant, name=name if tenant_id is None else tenant)
        stored = keys_repo.insert_key(
            conn,
            key_id=ids.key_id(),
            tenant_id=tenant,
            name=name,
            key_hash=hash_key(secret),
            prefix=secret[:11],
            rpm_limit=rpm_limit,
            monthly_budget_usd=monthly_budget_usd,
            scopes=scopes,
        )
    request_limits.live_key_added(hash_key(secret))
    return NewKey(id=stored.id, name=stored.name, tenant_id=stored.tenant_id, key=secret)


def list_keys() -> list[KeyListing]:
    """Every key with its limits and this month's budget use (never the key)."""
    with connection() as conn:
        return keys_repo.list_keys(conn)


def revoke_key(key: str) -> ApiKey:
    """Revoke a key by id or prefix (it stops working within `auth_cache_seconds`)."""
    with connection() as conn:
        revoked = keys_repo.revoke_key(conn, key=key)
    if revoked is None:
        raise NotFound(f"no live key {key!r}", details={"key": key})
    forget_cached_keys()
    return revoked


def forget_cached_keys() -> None:
    """Drop this process's copies of looked-up keys (after a key changed or was revoked)."""
    with _cache_lock:
        _cache.clear()


def development_key(saved: str | None) -> tuple[str, bool]:
    """The local runner's key for the default tenant: the saved one while it is live, else a new one.

    Returns (key, made now). A saved key that this database does not know yet (a fresh database) is
    stored again, so the key printed once keeps working.
    """
    if saved:
        with connection() as conn:
            state = keys_repo.key_state(conn, key_hash=hash_key(saved))
        if state == "live":
            return saved, False
        if state == "unknown":
            return create_key(name="development", tenant_id=DEFAULT_TENANT, key=saved).key, False
    return create_key(name="development", tenant_id=DEFAULT_TENANT).key, True


# Live keys only, so a flood of made-up keys can never push them out; misses are kept apart, bounded.
_cache: dict[str, tuple[float, Principal]] = {}
_misses: dict[str, float] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 10_000


def presented_key(headers: dict[str, str]) -> str | None:
    """The key in `Authorization: Bearer …` or `X-API-Key` (header names in any case)."""
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "x-api-key" and value.strip():
            return value.strip()
        if lowered == "authorization":
            scheme, _, credentials = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


def _cached(digest: str, now: float) -> tuple[bool, Principal | None, bool]:
    """(known, principal, was live): a live key or a recent miss from the process cache, and whether the
    key was live when last looked up (such a key is looked up again without the guessing guard)."""
    with _cache_lock:
        hit = _cache.get(digest)
        if hit is not None and hit[0] > now:
            return True, hit[1], True
        missed = _misses.get(digest)
        if missed is not None and missed > now:
            return True, None, False
    return False, None, hit is not None


def _remember(digest: str, now: float, found: Principal | None) -> None:
    until = now + get_settings().auth_cache_seconds
    with _cache_lock:
        table: dict[str, Any] = _cache if found is not None else _misses
        if len(table) >= _CACHE_MAX:
            table.clear()
        if found is not None:
            _cache[digest] = (until, found)
        else:
            _misses[digest] = until


def _live_digests() -> list[str]:
    with connection() as conn:
        return keys_repo.live_key_hashes(conn)


def _lookup(key: str, *, client_ip: str | None = None) -> Principal | None:
    digest = hash_key(key)
    now = time.monotonic()
    known, principal, was_live = _cached(digest, now)
    if known:
        return principal
    if (
        client_ip is not None
        and not was_live
        and request_limits.auth_failures_exceeded(client_ip)
        and not request_limits.is_live_key(digest, load=_live_digests)
    ):  # a guess from an address that guessed too often: refused without a database lookup
        raise RateLimited(
            "too many requests with unknown API keys from this address; retry in a minute",
            headers={"Retry-After": str(get_settings().rate_limit_window_seconds)},
        )
    with connection() as conn:
        key_row = keys_repo.key_by_hash(conn, key_hash=digest)
    found = (
        Principal(
            tenant_id=key_row.tenant_id,
            key_id=key_row.id,
            key_name=key_row.name,
            rpm_limit=key_row.rpm_limit,
            monthly_budget_usd=key_row.monthly_budget_usd,
            scopes=frozenset(key_row.scopes) if key_row.scopes is not None else None,
        )
        if key_row is not None
        else None
    )
    if found is None and client_ip is not None:
        request_limits.record_auth_failure(client_ip)
    _remember(digest, now, found)
    return found


def authenticate(headers: dict[str, str], *, client_ip: str | None = None) -> Principal:
    """The principal a request acts for; `Unauthorized` without a live key (unless auth is off).

    A key not in the process cache is looked up only while the client's address has not sent too many
    unknown keys (`RateLimited` then), so guessing keys costs the database nothing.
    """
    if not get_settings().auth:
        return ANONYMOUS
    key = presented_key(headers)
    if key is None:
        raise Unauthorized("an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`")
    principal = _lookup(key, client_ip=client_ip)
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    return principal


def principal_for_key(key: str | None) -> Principal:
    """The principal an API key (from an intake message, say) acts for; `Unauthorized` without a live key."""
    if not get_settings().auth:
        return ANONYMOUS
    if not key:
        raise Unauthorized("an API key is required: send it in the `apiKey` message attribute")
    principal = _lookup(key)
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    return principal
