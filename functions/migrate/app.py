"""MigrateFunction: a CloudFormation custom resource that applies pending migrations on every deploy (and
stores the stack's first API key, generated in Secrets Manager, when the database does not know it yet).

`sam deploy` waits for it: a failure answers FAILED, and CloudFormation rolls the deploy back.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from promptlab.core.observability import inject_lambda_context, logger
from promptlab.db.migrate import migrate
from promptlab.infra import cfn_response
from promptlab.tenancy.first_key import ensure_first_key

PHYSICAL_ID = "promptlab-database-migrations"


@inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    if event["RequestType"] == "Delete":  # the data outlives the stack: nothing to undo
        cfn_response.send(event, status="SUCCESS", physical_id=PHYSICAL_ID, reason="migrations are kept")
        return {"Status": "SUCCESS"}
    try:
        applied = migrate()  # under an advisory lock; applies only what is pending
        first_key = event["ResourceProperties"].get("FirstKeySecretArn")
        made = ensure_first_key(first_key) if first_key else False
    except Exception as exc:  # noqa: BLE001 - CloudFormation must always get an answer
        logger.exception("migrations failed")
        reason = f"migrations failed: {type(exc).__name__}: {exc}"
        cfn_response.send(event, status="FAILED", physical_id=PHYSICAL_ID, reason=reason)
        return {"Status": "FAILED"}
    logger.info("migrations applied", applied=applied, first_key_made=made)
    data = {"Applied": ",".join(applied) or "none", "FirstKeyMade": str(made).lower()}
    cfn_response.send(event, status="SUCCESS", physical_id=PHYSICAL_ID, data=data)
    return {"Status": "SUCCESS"}
