"""IntakeFunction: `POST /generate` bodies sent over SQS by other services → jobs."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context, publish_metrics
from promptlab.infra.sqs_batch import process_sqs_batch
from promptlab.jobs.intake import Submission, accept_submission


def record_handler(record: SQSRecord) -> str | None:
    tenant, key = record.message_attributes["tenant"], record.message_attributes["apiKey"]
    return accept_submission(
        Submission(
            body=record.body,
            message_id=record.message_id,
            tenant_id=tenant.string_value if tenant else None,
            api_key=key.string_value if key else None,
        )
    )


@publish_metrics
@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_sqs_batch(event, context, record_handler)
