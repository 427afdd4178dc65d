"""Running an SQS batch the Lambda way: each record on its own, failures reported per item."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse, PartialItemFailures
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.json_types import LambdaEvent
from promptlab.core.observability import batch_logger, logger

RecordHandler = Callable[[SQSRecord], Any]


def process_sqs_batch(
    event: LambdaEvent, context: LambdaContext, record_handler: RecordHandler, *, concurrency: int = 1
) -> PartialItemFailureResponse:
    """Handle every record (up to `concurrency` at once); the ones that raise come back as `batchItemFailures`."""
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
