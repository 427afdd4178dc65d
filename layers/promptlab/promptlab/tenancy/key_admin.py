"""A tenant's API keys managed over HTTPS by its `admin` keys: make, list, change, revoke, rotate.

Each change is written to the audit log (never the key: its id, name, prefix, scopes and limits).
"""

from __future__ import annotations

from promptlab.core.errors import NotFound
from promptlab.db import keys_repo
from promptlab.db.connection import connection
from promptlab.models.keys import ApiKey, KeyListing
from promptlab.models.operators import KeyCreate, KeyCreated, KeyPage, KeyPublic, KeyUpdate
from promptlab.tenancy import audit, auth
from promptlab.tenancy.auth import Principal


def _public(key: ApiKey, listing: KeyListing | None = None) -> KeyPublic:
    return KeyPublic(
        id=key.id, name=key.name, prefix=key.prefix, scopes=key.scopes, rpm_limit=key.rpm_limit,
        monthly_budget_usd=key.monthly_budget_usd, spent_usd=listing.use.spent_usd if listing else None,
        created_at=key.created_at, revoked_at=key.revoked_at,
    )  # fmt: skip


def _summary(key: ApiKey) -> dict[str, object]:
    """What the audit log keeps of a key."""
    return {"name": key.name, "prefix": key.prefix, "scopes": key.scopes, "rpmLimit": key.rpm_limit,
            "monthlyBudgetUSD": None if key.monthly_budget_usd is None else str(key.monthly_budget_usd)}  # fmt: skip


def _created(made: auth.NewKey, tenant_id: str) -> tuple[ApiKey, KeyCreated]:
    with connection() as conn:
        stored = keys_repo.tenant_key(conn, tenant_id=tenant_id, key_id=made.id)
    assert stored is not None
    return stored, KeyCreated(**_public(stored).model_dump(), key=made.key)


def create(*, principal: Principal, request: KeyCreate) -> KeyCreated:
    """A new key of the caller's tenant, shown once."""
    made = auth.create_key(
        name=request.name, tenant_id=principal.tenant_id, rpm_limit=request.rpm_limit,
        monthly_budget_usd=request.monthly_budget_usd, scopes=request.scopes,
    )  # fmt: skip
    stored, created = _created(made, principal.tenant_id)
    audit.record(principal, "key.created", "key", made.id, after=_summary(stored))
    return created


def list_keys(*, tenant_id: str) -> KeyPage:
    """The tenant's keys (revoked ones too), with this month's spend; never a key."""
    with connection() as conn:
        listings = keys_repo.list_keys(conn, tenant_id=tenant_id)
    return KeyPage(items=[_public(listing.key, listing) for listing in listings])


def _require(tenant_id: str, key_id: str) -> ApiKey:
    with connection() as conn:
        key = keys_repo.tenant_key(conn, tenant_id=tenant_id, key_id=key_id)
    if key is None:
        raise NotFound(f"no key {key_id!r}", details={"keyId": key_id})
    return key


def update(*, principal: Principal, key_id: str, request: KeyUpdate) -> KeyPublic:
    """Change a live key's name, rate limit or budget (`null` removes a limit)."""
    before = _require(principal.tenant_id, key_id)
    changes = {name: getattr(request, name) for name in request.model_fields_set}
    with connection() as conn:
        after = keys_repo.update_key(conn, tenant_id=principal.tenant_id, key_id=key_id, changes=changes)
    if after is None:
        raise NotFound(f"no live key {key_id!r}", details={"keyId": key_id})
    auth.forget_cached_keys()
    audit.record(principal, "key.updated", "key", key_id, before=_summary(before), after=_summary(after))
    return _public(after)


def revoke(*, principal: Principal, key_id: str) -> None:
    """Revoke a key now (it stops working within the auth cache's seconds)."""
    with connection() as conn:
        revoked = keys_repo.revoke_tenant_key(conn, tenant_id=principal.tenant_id, key_id=key_id)
    if revoked is None:
        raise NotFound(f"no live key {key_id!r}", details={"keyId": key_id})
    auth.forget_cached_keys()
    audit.record(principal, "key.revoked", "key", key_id, before=_summary(revoked))


def rotate(*, principal: Principal, key_id: str, overlap_seconds: int) -> KeyCreated:
    """A new key with the old one's name, scopes, limit and budget; the old one works `overlap_seconds` more."""
    old = _require(principal.tenant_id, key_id)
    with connection() as conn:
        ended = keys_repo.revoke_tenant_key(
            conn, tenant_id=principal.tenant_id, key_id=key_id, after_seconds=overlap_seconds
        )
    if ended is None:
        raise NotFound(f"no live key {key_id!r}", details={"keyId": key_id})
    made = auth.create_key(
        name=old.name, tenant_id=principal.tenant_id, rpm_limit=old.rpm_limit,
        monthly_budget_usd=old.monthly_budget_usd, scopes=old.scopes,
    )  # fmt: skip
    auth.forget_cached_keys()
    audit.record(principal, "key.rotated", "key", key_id, before={"prefix": old.prefix},
                 after={"newKeyId": made.id, "prefix": made.key[:11], "overlapSeconds": overlap_seconds})  # fmt: skip
    return _created(made, principal.tenant_id)[1]
