"""SQS adapter: moto, LocalStack and AWS differ only by endpoint."""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.json_types import JsonObject
from promptlab.core.settings import Settings, get_settings
from promptlab.models.jobs import JobMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class JobQueue(Protocol):
    """What the services need from a queue."""

    def send_job(self, *, job_id: str, priority: str) -> None: ...

    def send_jobs(self, jobs: list[tuple[str, str]]) -> set[str]: ...

    def delay(self, *, source_arn: str, receipt_handle: str, seconds: int) -> None: ...

    def park(self, *, source_arn: str, body: str, seconds: int) -> None: ...

    def dead_letter(self, *, body: str, job_id: str, reason: str, attempts: int) -> None: ...

    def reject_submission(self, *, body: str, reason: str, tenant_id: str | None) -> None: ...

    def send_notification(self, *, job_id: str) -> None: ...

    def send_tenant_event(self, *, body: str) -> None: ...


class SqsJobQueue:
    """Job queues (one per priority) and the dead-letter queue on SQS."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: SQSClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3  # heavy; only paid by the first call that needs SQS
                    from botocore.config import Config

                    self._client = boto3.client(
                        "sqs",
                        region_name=self._settings.aws_region,
                        endpoint_url=self._settings.aws_endpoint_url,
                        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
                    )
        return self._client

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable("the job queue is unreachable", details={"dependency": "sqs"}) from exc

    def send_job(self, *, job_id: str, priority: str) -> None:
        body = JobMessage(job_id=job_id).to_body()
        self._call("send_message", QueueUrl=self._settings.queue_url(priority), MessageBody=body)

    def send_jobs(self, jobs: list[tuple[str, str]]) -> set[str]:
        """Send (job id, priority) pairs in batches of 10 per queue; returns the ids SQS accepted."""
        by_priority: dict[str, list[str]] = {}
        for job_id, priority in jobs:
            by_priority.setdefault(priority, []).append(job_id)
        sent: set[str] = set()
        for priority, ids in by_priority.items():
            url = self._settings.queue_url(priority)
            for start in range(0, len(ids), 10):
                chunk = ids[start : start + 10]
                entries = [
                    {"Id": str(i), "MessageBody": JobMessage(job_id=job_id).to_body()} for i, job_id in enumerate(chunk)
                ]
                try:
                    answer = self._call("send_message_batch", QueueUrl=url, Entries=entries)
                except DependencyUnavailable:
                    continue
                sent.update(chunk[int(ok["Id"])] for ok in answer.get("Successful", []))
        return sent

    def queue_url_for_arn(self, arn: str) -> str:
        """The URL of a queue given the ARN an SQS event carries."""
        name = arn.rsplit(":", 1)[-1]
        settings = self._settings
        for url in (
            settings.job_queue_high_url,
            settings.job_queue_normal_url,
            settings.job_queue_low_url,
            settings.job_dlq_url,
        ):
            if url and url.rstrip("/").rsplit("/", 1)[-1] == name:
                return url
        return str(self._call("get_queue_url", QueueName=name)["QueueUrl"])

    def delay(self, *, source_arn: str, receipt_handle: str, seconds: int) -> None:
        self._call(
            "change_message_visibility",
            QueueUrl=self.queue_url_for_arn(source_arn),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, 43_200)),
        )

    def park(self, *, source_arn: str, body: str, seconds: int) -> None:
        """Send the message again, delayed (at most 15 minutes): the caller then acknowledges the received
        copy, so waiting never counts toward the queue's `maxReceiveCount`."""
        self._call(
            "send_message",
            QueueUrl=self.queue_url_for_arn(source_arn),
            MessageBody=body,
            DelaySeconds=max(0, min(seconds, 900)),
        )

    def dead_letter(self, *, body: str, job_id: str, reason: str, attempts: int) -> None:
        if not self._settings.job_dlq_url:
            raise DependencyUnavailable("no dead-letter queue configured (JOB_DLQ_URL)")
        self._call(
            "send_message",
            QueueUrl=self._settings.job_dlq_url,
            MessageBody=body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1000]},
                "jobId": {"DataType": "String", "StringValue": job_id},
                "attempts": {"DataType": "Number", "StringValue": str(attempts)},
            },
        )

    def reject_submission(self, *, body: str, reason: str, tenant_id: str | None) -> None:
        """Park a bad intake message on the intake DLQ with the reason, instead of dropping it."""
        if not self._settings.intake_dlq_url:
            raise DependencyUnavailable("no intake dead-letter queue configured (INTAKE_DLQ_URL)")
        attributes: JsonObject = {"reason": {"DataType": "String", "StringValue": reason[:1000]}}
        if tenant_id:
            attributes["tenant"] = {"DataType": "String", "StringValue": tenant_id}
        self._call(
            "send_message", QueueUrl=self._settings.intake_dlq_url, MessageBody=body, MessageAttributes=attributes
        )

    def send_notification(self, *, job_id: str) -> None:
        """Queue the announcement of a finished job."""
        body = JobMessage(job_id=job_id).to_body()
        self._call("send_message", QueueUrl=self._settings.notify_queue_url, MessageBody=body)

    def send_tenant_event(self, *, body: str) -> None:
        """Queue a tenant's event (a label moved) for the notifier to deliver."""
        self._call("send_message", QueueUrl=self._settings.notify_queue_url, MessageBody=body)

    def ping(self) -> None:
        """Raise `DependencyUnavailable` unless the normal-priority queue answers."""
        self._call(
            "get_queue_attributes",
            QueueUrl=self._settings.queue_url("normal"),
            AttributeNames=["ApproximateNumberOfMessages"],
        )


@cache
def get_queue() -> SqsJobQueue:
    """The process-wide queue adapter."""
    return SqsJobQueue(get_settings())
