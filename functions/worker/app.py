"""WorkerFunction: SQS job messages → claimed, generated, completed or failed jobs."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context, publish_metrics
from promptlab.core.settings import get_settings
from promptlab.experiments.runs import register_hooks
from promptlab.infra.sqs_batch import process_sqs_batch
from promptlab.jobs.route_slots import Delivery, Invocation
from promptlab.jobs.worker import process_delivery

register_hooks()  # ended jobs and sweeps reach the experiments that made them


@publish_metrics
@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    invocation = Invocation()  # the calls of this batch, which its records may wait on

    def record_handler(record: SQSRecord) -> str:
        return process_delivery(
            Delivery(
                body=record.body,
                message_id=record.message_id,
                receipt_handle=record.receipt_handle,
                source_arn=record.event_source_arn,
                invocation=invocation,
            )
        )

    return process_sqs_batch(event, context, record_handler, concurrency=get_settings().worker_concurrency)
