"""DlqFunction: messages on the job DLQ → jobs marked failed, dead letters recorded."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.dead_letters import DeadLetter, record_dead_letter
from promptlab.observability import batch_logger, logger


def record_handler(record: SQSRecord) -> str | None:
    reason = record.message_attributes["reason"]
    return record_dead_letter(
        DeadLetter(
            body=record.body,
            message_id=record.message_id,
            queue=record.event_source_arn,
            receive_count=int(record.attributes.approximate_receive_count),
            reason=reason.string_value if reason else None,
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
