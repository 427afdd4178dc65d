"""Another service submits jobs with a plain boto3 client on the intake queue."""

import json
from typing import Any

import boto3

from promptlab.local.runner import LocalRunner
from tests.support import call_api, drain_queues, queued_messages, rows


def plain_client(runner: LocalRunner) -> Any:
    """What an integrating service has: boto3, the endpoint and the queue's name."""
    return boto3.client("sqs", region_name="us-east-1", endpoint_url=runner.sqs_endpoint)


def test_a_plain_boto3_client_submits_a_job_that_completes(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    sqs = plain_client(clean_queues)
    url = sqs.get_queue_url(QueueName="promptlab-local-intake")["QueueUrl"]
    body = {"templateId": template["id"], "input": "intake", "metadata": {"order": "42"}}
    sent = sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(body),
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "default"}},
    )
    assert drain_queues(clean_queues, function="IntakeFunction") == 1
    jobs = rows("SELECT id, tenant_id FROM jobs WHERE source_message_id = %s", sent["MessageId"])
    assert len(jobs) == 1 and jobs[0]["tenant_id"] == "default"
    assert drain_queues(clean_queues) == 1
    job = call_api(clean_queues, "GET", f"/jobs/{jobs[0]['id']}").body
    assert job["status"] == "completed" and job["metadata"] == {"order": "42"}


def test_a_redelivered_submission_makes_one_job(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    from promptlab.jobs.intake import Submission, accept_submission

    submission = Submission(
        body=json.dumps({"templateId": template["id"], "input": "once"}), message_id="msg-redelivered", tenant_id=None
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
    bad = [
        ("not json", None),
        (json.dumps({"templateId": template["id"], "input": {"wrong": 1}}), None),
        (json.dumps({"templateId": "tpl_missing", "input": "x"}), None),
        (json.dumps({"templateId": template["id"], "input": "x"}), "no-such-tenant"),
    ]
    for body, tenant in bad:
        attributes = {"tenant": {"DataType": "String", "StringValue": tenant}} if tenant else {}
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    assert drain_queues(clean_queues, function="IntakeFunction") == 4
    rejected = queued_messages(clean_queues, "IntakeDLQ")
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in rejected)
    assert len(reasons) == 4, reasons
    assert any(r.startswith("invalid request: body") for r in reasons)  # not JSON
    assert any("input.wrong" in r for r in reasons)
    assert any(r.startswith("not_found:") for r in reasons)
    assert any("unknown tenant 'no-such-tenant'" in r for r in reasons)
    assert queued_messages(clean_queues, "IntakeQueue") == []
