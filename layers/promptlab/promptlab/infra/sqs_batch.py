"""Running an SQS batch the Lambda way: each record on its own, failures reported per item."""

from __future__ import annotations

import contextvars
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.json_types import LambdaEvent
from promptlab.core.observability import batch_logger, count, logger
from promptlab.core.settings import get_settings
from promptlab.infra.job_queue import get_queue

RecordHandler = Callable[[SQSRecord], Any]


def store_backoff_seconds(waits: int) -> int:
    """How long a record whose store failed `waits` times in a row waits before its next delivery (with
    jitter, so the records of one outage do not all come back in the same second)."""
    schedule = get_settings().store_backoff_seconds
    base = schedule[min(waits, len(schedule)) - 1]
    return base + random.randint(0, base // 2)  # spreading load, not a secret


def _back_soon(record_handler: RecordHandler) -> RecordHandler:
    """The handler, with a record whose store failed made visible again after the store backoff (by its
    receive count) instead of after the queue's visibility timeout; the record still fails."""

    def handle(record: SQSRecord) -> Any:
        try:
            return record_handler(record)
        except DependencyUnavailable:
            seconds = store_backoff_seconds(max(1, int(record.attributes.approximate_receive_count or 1)))
            count("StoreFaults")
            try:
                get_queue().delay(
                    source_arn=record.event_source_arn, receipt_handle=record.receipt_handle, seconds=seconds
                )
            except DependencyUnavailable:
                logger.warning("record's visibility unchanged: the queue does not answer", message_id=record.message_id)
            raise

    return handle


def process_sqs_batch(
    event: LambdaEvent, context: LambdaContext, record_handler: RecordHandler, *, concurrency: int = 1
) -> PartialItemFailureResponse:
    """Handle every record (up to `concurrency` at once); the ones that raise come back as `batchItemFailures`
    (the ones that raise because a store is down, within seconds)."""
    record_handler = _back_soon(record_handler)
    if concurrency > 1:
        return _concurrent(event, record_handler, concurrency)
    # A processor per invocation: it holds batch state, and the local runner invokes concurrently.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=batch_logger)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


def _concurrent(event: LambdaEvent, record_handler: RecordHandler, concurrency: int) -> PartialItemFailureResponse:
    records = [SQSRecord(raw) for raw in event.get("Records", [])]
    if not records:
        return {"batchItemFailures": []}
    with ThreadPoolExecutor(max_workers=min(concurrency, len(records)), thread_name_prefix="record") as pool:
        # Each record runs in a copy of this context: its log lines keep the invocation's function and request id.
        futures = [(record, pool.submit(contextvars.copy_context().run, record_handler, record)) for record in records]
        failures: list[PartialItemFailures] = []
        for record, future in futures:
            error = future.exception()
            if error is not None:
                # The type and code only: an error's message may quote a prompt or an answer.
                logger.warning(
                    "record failed; it stays on the queue",
                    message_id=record.message_id,
                    error=type(error).__name__,
                    code=getattr(error, "code", None),
                )
                failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}
