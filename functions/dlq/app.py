"""DlqFunction: messages on the job DLQ → jobs marked failed, dead letters recorded."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context
from promptlab.infra.sqs_batch import process_sqs_batch
from promptlab.jobs.dead_letters import DeadLetter, record_dead_letter


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


@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_sqs_batch(event, context, record_handler)
