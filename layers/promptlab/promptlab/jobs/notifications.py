"""Announcing finished jobs: an EventBridge event, an SNS message, and a signed webhook per job."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

from promptlab.core.clock import rfc3339, utc_now
from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.db import attempts_repo, jobs_repo, notifications_repo
from promptlab.db.connection import connection
from promptlab.infra import webhook_targets
from promptlab.infra.job_queue import get_queue
from promptlab.infra.publishers import get_publishers
from promptlab.jobs.lifecycle import job_public
from promptlab.models.jobs import Job, JobMessage
from promptlab.tenancy import tenant_events, webhook_signing

EVENTS = {
    "completed": "promptlab.job.completed",
    "failed": "promptlab.job.failed",
    "cancelled": "promptlab.job.cancelled",
}


class DeliveryFailed(Exception):
    """A channel did not take the announcement; the message comes back after the backoff."""


@dataclass(frozen=True)
class Announcement:
    """One notify-queue record."""

    body: str
    receipt_handle: str
    source_arn: str
    receive_count: int


def webhook_id(job_id: str, event: str) -> str:
    """The delivery's `webhook-id`: the same on every retry, so receivers can de-duplicate on it."""
    return f"{job_id}_{event.rsplit('.', 1)[-1]}"


def _post_webhook(job: Job, event: str, body: bytes) -> int:
    """POST one Standard Webhooks delivery, signed with the job's tenant's secrets."""
    assert job.callback_url is not None
    settings = get_settings()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PromptLab-Webhook/1",
        "X-PromptLab-Event": event,
        **webhook_signing.signature_headers(
            webhook_signing.signing_keys(job.tenant_id),
            message_id=webhook_id(job.id, event),
            timestamp=utc_now(),
            body=body,
        ),
    }
    return webhook_targets.post(job.callback_url, body, headers, timeout=settings.webhook_timeout_seconds)


def _channels(job: Job) -> list[str]:
    settings = get_settings()
    channels = []
    if settings.event_bus_name:
        channels.append("eventbridge")
    if settings.job_events_topic_arn:
        channels.append("sns")
    if job.callback_url:
        channels.append("webhook")
    return channels


def _send(channel: str, job: Job, event: str, body: bytes) -> int | None:
    settings = get_settings()
    if channel == "eventbridge":
        get_publishers().put_event(bus=settings.event_bus_name, detail_type=event, detail=body.decode())
        return None
    if channel == "sns":
        get_publishers().publish(topic_arn=settings.job_events_topic_arn, event=event, message=body.decode())
        return None
    status = _post_webhook(job, event, body)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"webhook answered {status}")
    return status


def _deliver_tenant_event(announcement: Announcement) -> list[str]:
    """A tenant's event (a label moved): posted to its events URL, retried with the webhooks' backoff."""
    settings = get_settings()
    failure: str | None
    try:
        status = tenant_events.deliver(announcement.body)
    except webhook_targets.TargetRefused as exc:
        logger.warning("tenant event refused by its target", error=str(exc))
        return []
    except (DependencyUnavailable, OSError, http.client.HTTPException) as exc:
        status, failure = None, str(exc)
    else:
        failure = None if status is None or 200 <= status < 300 else f"webhook answered {status}"
    if failure is None:
        return ["webhook"] if status is not None else []
    if announcement.receive_count < settings.webhook_max_attempts:
        schedule = settings.webhook_backoff_seconds
        delay = schedule[min(announcement.receive_count - 1, len(schedule) - 1)]
        get_queue().delay(source_arn=announcement.source_arn, receipt_handle=announcement.receipt_handle, seconds=delay)
        raise DeliveryFailed(f"{failure}; next try in {delay} s")
    logger.warning("tenant event abandoned", error=failure)
    return []


def deliver(announcement: Announcement) -> list[str]:
    """Announce the job on every configured channel not yet done (or deliver a tenant's event); returns the
    channels delivered now."""
    if tenant_events.is_tenant_event(announcement.body):
        return _deliver_tenant_event(announcement)
    settings = get_settings()
    job_id = JobMessage.model_validate_json(announcement.body).job_id
    with connection() as conn:
        job = jobs_repo.get_job_any_tenant(conn, job_id=job_id)
        if job is None or job.status not in EVENTS:
            return []
        event = EVENTS[job.status]
        done = notifications_repo.delivered_channels(conn, job_id=job_id, event=event)
        attempts = attempts_repo.list_attempts(conn, job_id=job_id)
    payload = {
        "type": event,
        "event": event,
        "tenantId": job.tenant_id,
        "timestamp": rfc3339(utc_now()),
        "job": job_public(job, attempts).model_dump(mode="json", by_alias=True),
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    delivered: list[str] = []
    failed: list[str] = []
    for channel in _channels(job):
        if channel in done:
            continue
        status: int | None = None
        refused = False
        try:
            status = _send(channel, job, event, body)
            error = None
        except webhook_targets.TargetRefused as exc:  # permanent: no retry can make the target acceptable
            error, refused = f"refused: {exc}", True
        except (DeliveryFailed, DependencyUnavailable, OSError, http.client.HTTPException) as exc:
            error = str(exc)
        with connection() as conn:
            notifications_repo.record_notification(
                conn,
                job_id=job_id,
                channel=channel,
                event=event,
                attempt=announcement.receive_count,
                status_code=status,
                error=error,
                delivered=error is None,
            )
        if error is None:
            delivered.append(channel)
        elif not refused:
            failed.append(channel)
    if failed and announcement.receive_count < settings.webhook_max_attempts:
        schedule = settings.webhook_backoff_seconds
        delay = schedule[min(announcement.receive_count - 1, len(schedule) - 1)]
        get_queue().delay(source_arn=announcement.source_arn, receipt_handle=announcement.receipt_handle, seconds=delay)
        raise DeliveryFailed(f"{', '.join(failed)} failed; next try in {delay} s")
    if failed:
        logger.warning("job announcement abandoned", job_id=job_id, channels=failed)
    return delivered
