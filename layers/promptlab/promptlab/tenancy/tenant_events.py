"""A tenant's own events, delivered as Standard Webhooks to the URL its admin set (`PUT /webhooks`).

`template.label.moved` lets clients that keep a template by label refresh at once. An event is queued on
the notify queue when the change is made and posted by the notifier, signed with the tenant's webhook
secret (as job webhooks are), retried with the same backoff, the same `webhook-id` on every try.
"""

from __future__ import annotations

import json
import uuid

from promptlab.core.clock import rfc3339, utc_now
from promptlab.core.errors import DependencyUnavailable, ValidationFailed
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.db import keys_repo
from promptlab.db.connection import connection
from promptlab.infra import webhook_targets
from promptlab.infra.job_queue import get_queue
from promptlab.tenancy import webhook_signing

EVENTS = ("template.label.moved", "batch.completed", "batch.failed", "batch.cancelled", "batch.expired")


def set_url(*, tenant_id: str, url: str | None) -> None:
    """Where the tenant's events go (None: nowhere); the URL is vetted as a job's callback is."""
    if url is not None:
        try:
            webhook_targets.vet(url)
        except webhook_targets.TargetRefused as exc:
            raise ValidationFailed.single("url", str(exc)) from exc
    with connection() as conn:
        keys_repo.set_events_url(conn, tenant_id=tenant_id, url=url)


def get_url(*, tenant_id: str) -> str | None:
    with connection() as conn:
        return keys_repo.events_url(conn, tenant_id=tenant_id)


def publish(*, tenant_id: str, event: str, data: JsonObject) -> None:
    """Queue the event when the tenant has an events URL (best effort: an outage is logged)."""
    assert event in EVENTS, event
    if not get_settings().notify_queue_url or get_url(tenant_id=tenant_id) is None:
        return
    body = {"tenantEvent": event, "id": f"evt_{uuid.uuid4().hex}", "tenantId": tenant_id,
            "timestamp": rfc3339(utc_now()), "data": data}  # fmt: skip
    try:
        get_queue().send_tenant_event(body=json.dumps(body, separators=(",", ":")))
    except DependencyUnavailable:
        logger.warning("tenant event not queued: the notify queue is unreachable", event=event)


def is_tenant_event(body: str) -> bool:
    return body.lstrip().startswith('{"tenantEvent"')


def deliver(body: str) -> int | None:
    """POST one queued event; its status (None: the tenant has no URL any more). Raises on a failure."""
    message = json.loads(body)
    url = get_url(tenant_id=message["tenantId"])
    if url is None:
        return None
    event = {"type": message["tenantEvent"], "tenantId": message["tenantId"], "timestamp": message["timestamp"],
             "data": message["data"]}  # fmt: skip
    payload = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json", "User-Agent": "PromptLab-Webhook/1",
        "X-PromptLab-Event": message["tenantEvent"],
        **webhook_signing.signature_headers(
            webhook_signing.signing_keys(message["tenantId"]), message_id=message["id"], timestamp=utc_now(),
            body=payload,
        ),
    }  # fmt: skip
    return webhook_targets.post(url, payload, headers, timeout=get_settings().webhook_timeout_seconds)
