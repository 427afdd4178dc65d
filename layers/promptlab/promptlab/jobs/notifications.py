"""Announcing finished jobs: an EventBridge event, an SNS message, and a signed webhook per job."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from dataclasses import dataclass

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import logger
from promptlab.core.settings import get_settings
from promptlab.db import jobs_repo, notifications_repo
from promptlab.db.connection import connection
from promptlab.infra import webhook_targets
from promptlab.infra.job_queue import get_queue
from promptlab.infra.publishers import get_publishers
from promptlab.infra.secrets import webhook_secret
from promptlab.jobs.lifecycle import job_public
from promptlab.models.jobs import Job, JobMessage

EVENTS = {
    "completed": "promptlab.job.completed",
    "failed": "promptlab.job.failed",
    "cancelled": "promptlab.job.cancelled",
}
SIGNATURE_HEADER = "X-PromptLab-Signature"


class DeliveryFailed(Exception):
    """A channel did not take the announcement; the message comes back after the backoff."""


@dataclass(frozen=True)
class Announcement:
    """One notify-queue record."""

    body: str
    receipt_handle: str
    source_arn: str
    receive_count: int


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `{timestamp}.{body}` (the receiver recomputes and compares)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def _post_webhook(url: str, event: str, delivery_id: str, body: bytes) -> int:
    settings = get_settings()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PromptLab-Webhook/1",
        "X-PromptLab-Event": event,
        "X-PromptLab-Delivery": delivery_id,
        "X-PromptLab-Timestamp": timestamp,
    }
    secret = webhook_secret()
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return webhook_targets.post(url, body, headers, timeout=settings.webhook_timeout_seconds)


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
    assert job.callback_url is not None
    status = _post_webhook(job.callback_url, event, f"{job.id}:{event}", body)
    if not 200 <= status < 300:
        raise DeliveryFailed(f"webhook answered {status}")
    return status


def deliver(announcement: Announcement) -> list[str]:
    """Announce the job on every configured channel not yet done; returns the channels delivered now."""
    settings = get_settings()
    job_id = JobMessage.model_validate_json(announcement.body).job_id
    with connection() as conn:
        job = jobs_repo.get_job_any_tenant(conn, job_id=job_id)
        if job is None or job.status not in EVENTS:
            return []
        event = EVENTS[job.status]
        done = notifications_repo.delivered_channels(conn, job_id=job_id, event=event)
        attempts = jobs_repo.list_attempts(conn, job_id=job_id)
    body = json.dumps(
        {"event": event, "job": job_public(job, attempts).model_dump(mode="json", by_alias=True)},
        separators=(",", ":"),
    ).encode()
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
