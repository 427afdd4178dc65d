"""ApiFunction: API Gateway REST proxy events → the PromptLab resolver."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.api.app import app
from promptlab.core.observability import inject_lambda_context, publish_metrics


@publish_metrics
@inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
