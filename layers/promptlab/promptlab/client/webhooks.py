"""Verify PromptLab's webhooks (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from promptlab.client.errors import PromptLabClientError


class InvalidWebhook(PromptLabClientError):
    """The request is not a webhook signed with this secret (or it is older than five minutes)."""


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str) -> dict[str, Any]:
    """The webhook's JSON payload once its signature checks out with the tenant's `whsec_…` secret.

    During a rotation pass the old secret too: `verify_webhook(h, b, new)` failing, then `(h, b, old)`.
    Raises `InvalidWebhook` for a wrong signature, a missing header or a stale timestamp (replay).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    text = body.decode() if isinstance(body, bytes) else body
    try:
        Webhook(secret).verify(text, lowered)
    except WebhookVerificationError as exc:
        raise InvalidWebhook(str(exc)) from None
    payload: dict[str, Any] = json.loads(text)
    return payload
