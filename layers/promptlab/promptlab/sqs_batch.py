"""Running an SQS batch the Lambda way: each record on its own, failures reported per item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.observability import batch_logger


def process_sqs_batch(
    event: dict[str, Any], context: LambdaContext, record_handler: Callable[[SQSRecord], Any]
) -> PartialItemFailureResponse:
    """Handle every record; the ones that raise come back as `batchItemFailures`."""
    # A processor per invocation: it holds batch state, and the local runner invokes concurrently.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=batch_logger)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
