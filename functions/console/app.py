"""ConsoleFunction: the web console's page and assets (`GET /`, `GET /assets/{name}`)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.console import respond


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return respond(event)
