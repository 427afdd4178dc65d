"""Webhook signatures per tenant, as the Standard Webhooks spec has them (what OpenAI's webhooks use).

Every delivery carries `webhook-id` (stable across retries: receivers de-duplicate on it),
`webhook-timestamp` (Unix seconds; receivers reject ones more than 5 minutes off) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the tenant's `whsec_…` secret). A tenant's
secret is made on its first webhook (or by `promptlab tenants webhook-secret`); after a rotation the old
secret signs too, for `ROTATION_GRACE`, so a receiver can switch without dropping a delivery.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from promptlab.core.clock import utc_now
from promptlab.core.errors import NotFound
from promptlab.db import keys_repo
from promptlab.db.connection import connection

ROTATION_GRACE = timedelta(hours=24)
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, base64, with the Standard Webhooks prefix."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class SigningKeys:
    """The secrets a tenant's deliveries are signed with now (the current one first)."""

    current: str
    previous: str | None = None

    def all(self) -> list[str]:
        return [self.current, *([self.previous] if self.previous else [])]


def _signing_keys(current: str, previous: str | None, rotated_at: datetime | None) -> SigningKeys:
    still_valid = previous is not None and rotated_at is not None and utc_now() - rotated_at < ROTATION_GRACE
    return SigningKeys(current=current, previous=previous if still_valid else None)


def signing_keys(tenant_id: str) -> SigningKeys:
    """The tenant's signing secrets, its first one made now if it has none."""
    with connection() as conn:
        current, previous, rotated_at = keys_repo.webhook_secrets(conn, tenant_id=tenant_id)
        if current is None:
            current = keys_repo.set_first_webhook_secret(conn, tenant_id=tenant_id, secret=new_secret())
    if current is None:
        raise NotFound(f"no tenant {tenant_id!r}", details={"tenantId": tenant_id})
    return _signing_keys(current, previous, rotated_at)


def rotate(tenant_id: str) -> str:
    """Give the tenant a new signing secret (the old one keeps signing for a day); returns the new one."""
    secret = new_secret()
    with connection() as conn:
        if not keys_repo.rotate_webhook_secret(conn, tenant_id=tenant_id, secret=secret):
            raise NotFound(f"no tenant {tenant_id!r}", details={"tenantId": tenant_id})
    return secret


def signature_headers(keys: SigningKeys, *, message_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery (one signature per valid secret)."""
    from standardwebhooks.webhooks import Webhook

    text = body.decode()
    signatures = " ".join(Webhook(key).sign(message_id, timestamp, text) for key in keys.all())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
