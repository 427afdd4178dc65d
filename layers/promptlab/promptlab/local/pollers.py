"""Event source mappings and schedules, done the way Lambda's pollers do them."""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptlab.core.json_types import JsonObject, LambdaEvent
from promptlab.core.observability import logger
from promptlab.local.stack import ACCOUNT_ID, Schedule, SqsMapping

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

Invoke = Callable[[str, LambdaEvent], Any]


def sqs_record(message: MessageTypeDef, *, queue_arn: str, region: str) -> LambdaEvent:
    """One SQS message as a Lambda event record."""
    attributes: dict[str, JsonObject] = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(result: Any, batch_ids: set[str]) -> set[str]:
    """The message ids to keep on the queue, by Lambda's rules for partial batch responses."""
    if not isinstance(result, dict) or not result.get("batchItemFailures"):
        return set()
    ids = set()
    for failure in result["batchItemFailures"]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return batch_ids  # an invalid response fails the whole batch
        ids.add(identifier)
    return ids


class SqsPoller(threading.Thread):
    """Receives batches from one queue, invokes the function, deletes what succeeded."""

    def __init__(
        self,
        *,
        mapping: SqsMapping,
        sqs: SQSClient,
        invoke: Invoke,
        region: str,
        stop: threading.Event,
        index: int,
    ) -> None:
        super().__init__(name=f"sqs-{mapping.function}-{mapping.queue_logical_id}-{index}", daemon=True)
        self.mapping = mapping
        self.sqs = sqs
        self.invoke = invoke
        self.region = region
        self.stop_event = stop

    def poll_once(self, wait_seconds: int = 1) -> int:
        """One receive → invoke → delete cycle; returns how many messages it received."""
        mapping = self.mapping
        messages = self._receive(wait_seconds)
        if not messages:
            return 0
        event = {"Records": [sqs_record(m, queue_arn=mapping.queue_arn, region=self.region) for m in messages]}
        batch_ids = {m["MessageId"] for m in messages}
        try:
            result = self.invoke(mapping.function, event)
        except Exception:
            logger.exception(
                "batch failed; its messages return after the visibility timeout", function=mapping.function
            )
            return len(messages)
        keep = failed_ids(result, batch_ids) if mapping.report_batch_item_failures else set()
        done: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if m["MessageId"] not in keep
        ]
        for start in range(0, len(done), 10):  # SQS deletes at most 10 a call
            self.sqs.delete_message_batch(QueueUrl=mapping.queue_url, Entries=done[start : start + 10])
        return len(messages)

    def _receive(self, wait_seconds: int) -> list[MessageTypeDef]:
        """A batch as Lambda gathers one: up to `BatchSize` messages, waiting up to the mapping's
        `MaximumBatchingWindowInSeconds` for more once the first has arrived."""
        mapping = self.mapping
        messages: list[MessageTypeDef] = []
        window_ends = 0.0
        while len(messages) < mapping.batch_size:
            wait = wait_seconds if not messages else max(0, math.ceil(window_ends - time.monotonic()))
            got = (
                self.sqs.receive_message(
                    QueueUrl=mapping.queue_url,
                    MaxNumberOfMessages=min(mapping.batch_size - len(messages), 10),
                    WaitTimeSeconds=min(wait, 20),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages")
                or []
            )
            if not messages:
                window_ends = time.monotonic() + mapping.batching_window_seconds
            messages += got
            if (not got and not messages) or time.monotonic() >= window_ends:
                break
        return messages

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("poller error; retrying", queue=self.mapping.queue_logical_id)
                self.stop_event.wait(1)


def scheduled_event(schedule: Schedule, region: str) -> LambdaEvent:
    """What EventBridge sends for a scheduled rule (or the rule's fixed Input)."""
    if schedule.payload:
        return dict(schedule.payload)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{schedule.function}-local"],
        "detail": {},
    }


class ScheduleTimer(threading.Thread):
    """Fires one schedule every `rate / speedup` seconds (at most every `at_most_seconds`, when given)."""

    def __init__(
        self,
        *,
        schedule: Schedule,
        invoke: Invoke,
        region: str,
        stop: threading.Event,
        speedup: float,
        at_most_seconds: float | None = None,
    ) -> None:
        super().__init__(name=f"schedule-{schedule.function}", daemon=True)
        self.schedule = schedule
        self.invoke = invoke
        self.region = region
        self.stop_event = stop
        self.interval = schedule.rate_seconds / max(speedup, 0.001)
        if at_most_seconds is not None:
            self.interval = min(self.interval, at_most_seconds)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.invoke(self.schedule.function, scheduled_event(self.schedule, self.region))
            except Exception:
                logger.exception("scheduled invocation failed", function=self.schedule.function)
