"""Another service submits jobs with a plain boto3 client on the intake queue."""

import json
from decimal import Decimal
from typing import Any

import boto3
import pytest

from promptlab.core.errors import RateLimited
from promptlab.jobs.intake import Submission, accept_submission
from promptlab.local.runner import LocalRunner
from promptlab.tenancy import auth
from tests.support import call_api, drain_queues, queued_messages, rows, unique


def plain_client(runner: LocalRunner) -> Any:
    """What an integrating service has: boto3, the endpoint and the queue's name."""
    return boto3.client("sqs", region_name="us-east-1", endpoint_url=runner.sqs_endpoint)


def key_attribute(key: str | None) -> dict[str, Any]:
    return {"apiKey": {"DataType": "String", "StringValue": key}} if key else {}


def test_a_plain_boto3_client_submits_a_job_that_completes(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    sqs = plain_client(clean_queues)
    url = sqs.get_queue_url(QueueName="promptlab-local-intake")["QueueUrl"]
    body = {"templateId": template["id"], "input": "intake", "metadata": {"order": "42"}}
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(body),
        MessageAttributes={
            "tenant": {"DataType": "String", "StringValue": "default"},
            **key_attribute(clean_queues.dev_key),
        },
    )
    assert drain_queues(clean_queues, function="IntakeFunction") == 1
    jobs = rows("SELECT id, tenant_id FROM jobs WHERE source_message_id = %s", sent["MessageId"])
    assert len(jobs) == 1 and jobs[0]["tenant_id"] == "default"
    assert drain_queues(clean_queues) == 1
    job = call_api(clean_queues, "GET", f"/jobs/{jobs[0]['id']}").body
    assert job["status"] == "completed" and job["metadata"] == {"order": "42"}


def test_a_redelivered_submission_makes_one_job(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    submission = Submission(
        body=json.dumps({"templateId": template["id"], "input": "once"}),
        message_id="msg-redelivered",
        tenant_id=None,
        api_key=clean_queues.dev_key,
    )
    first = accept_submission(submission)
    second = accept_submission(submission)
    assert first is not None and first == second
    assert len(rows("SELECT id FROM jobs WHERE source_message_id = %s", "msg-redelivered")) == 1
    assert len(queued_messages(clean_queues, "JobQueueNormal")) == 1


def test_bad_submissions_go_to_the_intake_dlq_with_a_reason(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    sqs = plain_client(clean_queues)
    url = sqs.get_queue_url(QueueName="promptlab-local-intake")["QueueUrl"]
    key = clean_queues.dev_key
    good = json.dumps({"templateId": template["id"], "input": "x"})
    bad = [
        ("not json", None, key),
        (json.dumps({"templateId": template["id"], "input": {"wrong": 1}}), None, key),
        (json.dumps({"templateId": "tpl_missing", "input": "x"}), None, key),
        (good, "no-such-tenant", key),  # a key of the default tenant cannot act for another
        (good, "default", None),  # no key: never the default tenant
        (good, None, "pl_made_up_key_000000000000"),
    ]
    for body, tenant, sender_key in bad:
        attributes = {"tenant": {"DataType": "String", "StringValue": tenant}} if tenant else {}
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={**attributes, **key_attribute(sender_key)})
    assert drain_queues(clean_queues, function="IntakeFunction") == 6
    rejected = queued_messages(clean_queues, "IntakeDLQ")
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in rejected)
    assert len(reasons) == 6, reasons
    assert any(r.startswith("invalid request: body") for r in reasons)  # not JSON
    assert any("input.wrong" in r for r in reasons)
    assert any(r.startswith("not_found:") for r in reasons)
    assert any("names another tenant" in r for r in reasons)
    assert any("an API key is required" in r for r in reasons)
    assert any("unknown or revoked" in r for r in reasons)
    assert queued_messages(clean_queues, "IntakeQueue") == []
    assert rows("SELECT id FROM jobs WHERE tenant_id = 'no-such-tenant'") == []


def test_an_intake_message_spends_its_keys_budget_and_limit(clean_queues: LocalRunner) -> None:
    # Given a key with a tiny budget and a limit of 2 requests a window
    made = auth.create_key(name=unique("intake"), monthly_budget_usd=Decimal("0.001"), rpm_limit=2)
    template = call_api(
        clean_queues, "POST", "/templates", api_key=made.key, body={"name": unique("i"), "body": "{{ t }}"}
    ).body  # request 1 of 2
    # When it submits over the intake queue a job whose worst case is over the budget
    over = Submission(
        body=json.dumps({"templateId": template["id"], "input": "x", "maxTokens": 1000}),
        message_id=unique("m"),
        tenant_id=None,
        api_key=made.key,
    )
    # Then it is rejected as over budget, like the HTTP path would answer 402
    assert accept_submission(over) is None
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in queued_messages(clean_queues, "IntakeDLQ")]
    assert any(r.startswith("budget_exceeded:") for r in reasons), reasons
    # And past its request limit a message is left on the queue to be tried again (not accepted, not lost)
    fits = Submission(
        body=json.dumps({"templateId": template["id"], "input": "y", "maxTokens": 10}),
        message_id=unique("m"),
        tenant_id=None,
        api_key=made.key,
    )
    with pytest.raises(RateLimited):
        accept_submission(fits)
