"""NotifierFunction: finished jobs → EventBridge event, SNS message and the job's signed webhook."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context
from promptlab.infra.sqs_batch import process_sqs_batch
from promptlab.jobs.notifications import Announcement, deliver


def record_handler(record: SQSRecord) -> list[str]:
    return deliver(
        Announcement(
            body=record.body,
            receipt_handle=record.receipt_handle,
            source_arn=record.event_source_arn,
            receive_count=int(record.attributes.approximate_receive_count),
        )
    )


@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_sqs_batch(event, context, record_handler, concurrency=4)
