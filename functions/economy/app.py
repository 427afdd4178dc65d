"""EconomyFunction: on a schedule, follow open provider batches and send waiting economy jobs as new ones."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context, publish_metrics
from promptlab.experiments.runs import register_hooks
from promptlab.jobs.economy import run

register_hooks()  # ended jobs and sweeps reach the experiments that made them


@publish_metrics
@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return asdict(run())
