"""`sam deploy` ends with a migrated database: the custom resource answers CloudFormation."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, rows, sample_event


class Catcher(ThreadingHTTPServer):
    """A stand-in for CloudFormation's pre-signed response URL."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CatcherHandler)
        self.answers: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cfn-response?X-Amz-Signature=x"


class CatcherHandler(BaseHTTPRequestHandler):
    server: Catcher

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_PUT(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    server = Catcher()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def deploy_event(kind: str, url: str) -> dict[str, Any]:
    """A sample CloudFormation event answering to `url` (its first-key secret only where a test makes one)."""
    event = sample_event(f"migrate-{kind}.json")
    event["ResponseURL"] = url
    event["ResourceProperties"].pop("FirstKeySecretArn", None)
    return event


@pytest.mark.parametrize("kind", ["create", "update", "delete"])
def test_every_deploy_event_is_answered_success(runner: LocalRunner, catcher: Catcher, kind: str) -> None:
    # Given the migrated test database, when CloudFormation sends a Create, Update or Delete
    runner.invoke("MigrateFunction", deploy_event(kind, catcher.url))
    # Then it gets one SUCCESS for the same resource, and the schema is at the latest migration
    [answer] = catcher.answers
    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == "promptlab-database-migrations"
    assert answer["RequestId"].startswith(kind) and answer["LogicalResourceId"] == "DatabaseMigrations"
    if kind != "delete":
        assert answer["Data"] == {"Applied": "none", "FirstKeyMade": "false"}  # nothing pending: a no-op
    from importlib import resources

    latest = max(f.name.removesuffix(".sql") for f in (resources.files("promptlab.db") / "migrations").iterdir())
    assert rows("SELECT max(version) AS v FROM schema_migrations")[0]["v"] == latest


def test_a_database_that_cannot_be_migrated_fails_the_deploy(
    runner: LocalRunner, catcher: Catcher, set_env: SetEnv
) -> None:
    # Given a database URL nothing answers at (tried once here; the deployed function waits 20 s for it)
    set_env(
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/promptlab",
        PROMPTLAB_DB_CONNECT_TIMEOUT_SECONDS="1",
        PROMPTLAB_DB_CONNECT_WAIT_SECONDS="0",
    )
    from promptlab.db.connection import close_all

    close_all()
    try:
        runner.invoke("MigrateFunction", deploy_event("update", catcher.url))
    finally:
        close_all()
    # Then CloudFormation is told FAILED with the reason, so it rolls the deploy back
    [answer] = catcher.answers
    assert answer["Status"] == "FAILED" and "migrations failed" in answer["Reason"]


def test_the_first_deploy_stores_the_stacks_first_api_key(
    runner: LocalRunner, catcher: Catcher, set_env: SetEnv
) -> None:
    import boto3

    set_env(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")  # as in Lambda
    from tests.support import call_api

    # Given the key Secrets Manager generated for the stack
    secrets = boto3.client("secretsmanager", endpoint_url=runner.sqs_endpoint)
    key = "pl" + uuid.uuid4().hex + uuid.uuid4().hex[:6]
    arn = secrets.create_secret(Name=f"first-key-{uuid.uuid4().hex[:8]}", SecretString=key)["ARN"]
    event = deploy_event("create", catcher.url)
    event["ResourceProperties"]["FirstKeySecretArn"] = arn
    # When CloudFormation creates the stack (and later updates it)
    runner.invoke("MigrateFunction", event)
    runner.invoke("MigrateFunction", {**event, "RequestType": "Update", "PhysicalResourceId": "x"})
    # Then the key is stored once, for the default tenant, and the API answers it
    assert [a["Data"].get("FirstKeyMade") for a in catcher.answers] == ["true", "false"]
    assert call_api(runner, "GET", "/templates", api_key=key).status == 200
