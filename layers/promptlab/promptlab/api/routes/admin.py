"""Operators' routes (the `admin` scope): the tenant's API keys over HTTPS, and its audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from promptlab.api.answers import doc, json_response, no_content
from promptlab.api.declared import route
from promptlab.api.resolver import current_principal
from promptlab.models.operators import (
    AuditPage,
    EventsWebhook,
    KeyCreate,
    KeyCreated,
    KeyPage,
    KeyPublic,
    KeyRotate,
    KeyUpdate,
    audit_public,
)
from promptlab.tenancy import audit, key_admin, tenant_events

router = Router()  # type: ignore[no-untyped-call]

KeyId = Annotated[str, Path(min_length=1, max_length=64, description="A key id (`key_…`).")]


@route(
    router, "POST", "/keys", scope="admin", event="CreateKey",
    summary="Make an API key",
    description="A key of this tenant with the given scopes (default `read` and `generate`), rate limit and"
    " monthly budget. The key is in this answer only; it is stored as a hash.",
    responses=doc(201, KeyCreated, "The key, shown once", 400, 403, 415, 422),
    request={"name": "billing-service", "scopes": ["generate", "read"], "monthlyBudgetUSD": "50.00"},
    tags=["operators"],
)  # fmt: skip
def create_key(body: KeyCreate) -> Response[str]:
    return json_response(201, key_admin.create(principal=current_principal(), request=body))


@route(
    router, "GET", "/keys", scope="admin", event="ListKeys",
    summary="List API keys", description="This tenant's keys, revoked ones too, with this month's spend; never a key.",
    responses=doc(200, KeyPage, "The keys", 403), tags=["operators"],
)  # fmt: skip
def list_keys() -> Response[str]:
    return json_response(200, key_admin.list_keys(tenant_id=current_principal().tenant_id))


@route(
    router, "PATCH", "/keys/<id>", scope="admin", event="UpdateKey",
    summary="Change an API key", description="Its name, rate limit or monthly budget; `null` removes a limit.",
    responses=doc(200, KeyPublic, "The key", 400, 403, 404, 415, 422), request={"monthlyBudgetUSD": "80.00"},
    tags=["operators"],
)  # fmt: skip
def update_key(id: KeyId, body: KeyUpdate) -> Response[str]:
    return json_response(200, key_admin.update(principal=current_principal(), key_id=id, request=body))


@route(
    router, "DELETE", "/keys/<id>", scope="admin", event="RevokeKey",
    summary="Revoke an API key", description="It stops working at once (within the auth cache's few seconds).",
    responses=doc(204, None, "Revoked", 403, 404), tags=["operators"],
)  # fmt: skip
def revoke_key(id: KeyId) -> Response[str]:
    key_admin.revoke(principal=current_principal(), key_id=id)
    return no_content()


@route(
    router, "POST", "/keys/<id>/rotate", scope="admin", event="RotateKey",
    summary="Rotate an API key",
    description="A new key with the old one's name, scopes, limit and budget; the old key keeps working for"
    " `overlapSeconds` (default an hour) so clients can switch without downtime.",
    responses=doc(201, KeyCreated, "The new key, shown once", 400, 403, 404, 415, 422),
    request={"overlapSeconds": 3600}, tags=["operators"],
)  # fmt: skip
def rotate_key(id: KeyId, body: KeyRotate) -> Response[str]:
    made = key_admin.rotate(principal=current_principal(), key_id=id, overlap_seconds=body.overlap_seconds)
    return json_response(201, made)


@route(
    router, "PUT", "/webhooks", scope="admin", event="SetEventsWebhook",
    summary="Set where this tenant's events go",
    description="A URL that receives `template.label.moved` (a label moved, by whom, from which version to which)"
    " as a Standard Webhooks POST signed with the tenant's webhook secret, retried until it answers 2xx;"
    " `null` stops them.",
    responses=doc(200, EventsWebhook, "Where events go now", 400, 403, 415, 422),
    request={"url": "https://example.com/hooks/promptlab"}, tags=["operators"],
)  # fmt: skip
def set_events_webhook(body: EventsWebhook) -> Response[str]:
    principal = current_principal()
    before = tenant_events.get_url(tenant_id=principal.tenant_id)
    tenant_events.set_url(tenant_id=principal.tenant_id, url=body.url)
    audit.record(principal, "webhook.changed", "tenant", principal.tenant_id, before={"url": before},
                 after={"url": body.url})  # fmt: skip
    return json_response(200, body)


@route(
    router, "GET", "/webhooks", scope="admin", event="GetEventsWebhook",
    summary="Where this tenant's events go", description="The URL `PUT /webhooks` set, or null.",
    responses=doc(200, EventsWebhook, "Where events go", 403), tags=["operators"],
)  # fmt: skip
def get_events_webhook() -> Response[str]:
    return json_response(200, EventsWebhook(url=tenant_events.get_url(tenant_id=current_principal().tenant_id)))


@route(
    router, "GET", "/audit", scope="admin", event="AuditLog",
    summary="Read the audit log",
    description="Every change made with this tenant's keys, newest first: who (key id and name), what (action,"
    " target, before → after), when, and the request id. Append-only and hash-chained; never prompt text.",
    responses=doc(200, AuditPage, "A page of the log", 403, 422), tags=["operators"],
)  # fmt: skip
def audit_log(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(alias="targetId", max_length=200)] = None,
    key_id: Annotated[str | None, Query(alias="keyId", max_length=64)] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="RFC 3339, inclusive")] = None,
    to: Annotated[datetime | None, Query(description="RFC 3339, exclusive")] = None,
) -> Response[str]:
    filters = {"action": action, "target_id": target_id, "key_id": key_id, "from": from_, "to": to}
    rows, next_cursor = audit.entries(
        tenant_id=current_principal().tenant_id, limit=limit, cursor=cursor, filters=filters
    )
    return json_response(200, AuditPage(items=[audit_public(r) for r in rows], next_cursor=next_cursor))
