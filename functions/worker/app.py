"""WorkerFunction: SQS job messages → claimed, generated, completed or failed jobs."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.observability import batch_logger, logger
from promptlab.processing import Delivery, process_delivery


def record_handler(record: SQSRecord) -> str:
    return process_delivery(
        Delivery(
            body=record.body,
            message_id=record.message_id,
            receipt_handle=record.receipt_handle,
            source_arn=record.event_source_arn,
        )
    )


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A processor per invocation: it holds batch state, and the local runner invokes concurrently.
    processor = BatchProcessor(
        event_type=EventType.SQS, raise_on_entire_batch_failure=False, logger=batch_logger
    )
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
