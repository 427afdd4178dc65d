"""SweeperFunction: on a schedule, send unsent jobs, recover expired leases, expire overdue jobs."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context
from promptlab.experiments.runs import register_hooks
from promptlab.jobs.sweeper import sweep

register_hooks()  # ended jobs and sweeps reach the experiments that made them


@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return asdict(sweep())
