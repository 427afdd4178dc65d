"""Finished jobs are announced: signed webhooks with retries, EventBridge events and SNS messages."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from promptlab.core.clock import utc_now
from promptlab.local.runner import LocalRunner
from promptlab.tenancy import webhook_signing
from tests.support import SetEnv, call_api, drain_queues, generate


def guide_verifier() -> Any:
    """The webhooks guide's `verified` function, run from the page as printed."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "webhooks.md").read_text(encoding="utf-8")
    scope: dict[str, Any] = {}
    exec(re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)[0], scope)  # noqa: S102 - our own page
    return scope["verified"]


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint that answers the statuses it is given, then 200, and keeps what it got."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/promptlab"


class ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver(set_env: SetEnv) -> Iterator[Receiver]:
    """A receiver on this machine: loopback must be allowed explicitly, locally too."""
    set_env(PROMPTLAB_WEBHOOK_ALLOW_LOOPBACK="true")
    server = Receiver([500])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_signed_webhook_is_retried_until_delivered(
    clean_queues: LocalRunner, template: dict[str, Any], receiver: Receiver, set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_WEBHOOK_BACKOFF_SECONDS="[0]")
    made = generate(clean_queues, template, callback=receiver.url)
    assert made["callbackUrl"] == receiver.url
    drain_queues(clean_queues)
    drain_queues(clean_queues, function="NotifierFunction")
    assert len(receiver.received) == 2  # a 500, then the retry that got a 200
    (first_headers, _), (headers, body) = receiver.received
    assert headers["x-promptlab-event"] == "promptlab.job.completed"
    # Standard Webhooks: the reference library verifies it with the tenant's secret (and its tolerance)
    secret = webhook_signing.signing_keys("default").current
    assert secret.startswith("whsec_")
    assert Webhook(secret).verify(body, headers)["tenantId"] == "default"
    assert headers["webhook-id"] == first_headers["webhook-id"] == f"{made['id']}_completed"  # de-duplicable
    with pytest.raises(Exception, match="signature"):
        Webhook(webhook_signing.new_secret()).verify(body, headers)
    payload = json.loads(body)
    assert payload["type"] == "promptlab.job.completed" and payload["job"]["id"] == made["id"]
    assert payload["job"]["output"].startswith("Fake answer")
    deliveries = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body["notifications"]
    assert [(d["channel"], d["statusCode"], d["delivered"]) for d in deliveries] == [
        ("webhook", None, False),
        ("webhook", 200, True),
    ]
    assert deliveries[0]["error"] == "webhook answered 500"


def test_a_failed_job_is_announced_too(
    clean_queues: LocalRunner, template: dict[str, Any], receiver: Receiver, set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="400")
    receiver.statuses.clear()
    made = generate(clean_queues, template, callback=receiver.url)
    drain_queues(clean_queues)
    drain_queues(clean_queues, function="NotifierFunction")
    assert [h["x-promptlab-event"] for h, _ in receiver.received] == ["promptlab.job.failed"]
    assert json.loads(receiver.received[0][1])["job"]["error"]["code"] == "invalid_request"
    assert receiver.received[0][0]["webhook-id"] == f"{made['id']}_failed"


def test_eventbridge_and_sns_receive_finished_jobs(
    clean_queues: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    endpoint = clean_queues.sqs_endpoint
    sqs: Any = boto3.client("sqs", region_name="us-east-1", endpoint_url=endpoint)
    events: Any = boto3.client("events", region_name="us-east-1", endpoint_url=endpoint)
    sns: Any = boto3.client("sns", region_name="us-east-1", endpoint_url=endpoint)
    inbox = sqs.create_queue(QueueName="announcements-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name="promptlab-test")
    events.put_rule(Name="jobs", EventBusName="promptlab-test", EventPattern=json.dumps({"source": ["promptlab"]}))
    events.put_targets(Rule="jobs", EventBusName="promptlab-test", Targets=[{"Id": "inbox", "Arn": inbox_arn}])
    topic = sns.create_topic(Name="promptlab-jobs")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    set_env(PROMPTLAB_EVENT_BUS_NAME="promptlab-test", PROMPTLAB_JOB_EVENTS_TOPIC_ARN=topic)
    from promptlab.infra.publishers import get_publishers

    get_publishers.cache_clear()
    made = generate(clean_queues, template)
    drain_queues(clean_queues)
    drain_queues(clean_queues, function="NotifierFunction")
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]]
    event = next(b for b in bodies if "detail-type" in b)
    assert event["detail-type"] == "promptlab.job.completed" and event["detail"]["job"]["id"] == made["id"]
    notice = next(b for b in bodies if b.get("Type") == "Notification")
    assert json.loads(notice["Message"])["job"]["id"] == made["id"]
    assert notice["MessageAttributes"]["event"]["Value"] == "promptlab.job.completed"
    channels = {d["channel"] for d in call_api(clean_queues, "GET", f"/jobs/{made['id']}").body["notifications"]}
    assert channels == {"eventbridge", "sns"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",  # loopback
        "http://localhost/hook",  # loopback by name
        "http://10.1.2.3/hook",  # private
        "http://192.168.0.10/hook",  # private
        "http://169.254.169.254/latest/meta-data/",  # link-local: the instance metadata service
        "http://[::1]/hook",  # IPv6 loopback
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::a00:1]/hook",  # local-use NAT64
        "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
        "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
        "http://[::a9fe:a9fe]/hook",  # IPv4-compatible metadata service
        "http://[::ffff:0:a00:1]/hook",  # IPv4-translated (SIIT) 10.0.0.1
        "http://[::ffff:0:a9fe:a9fe]/latest/meta-data/",  # IPv4-translated metadata service
    ],
)
def test_webhooks_to_non_public_addresses_are_refused_in_every_mode(
    runner: LocalRunner, template: dict[str, Any], url: str
) -> None:
    answer = call_api(runner, "POST", "/generate", body={"templateId": template["id"], "input": "x", "callback": url})
    assert answer.status == 422, answer.body
    fields = answer.body["error"]["details"]["fields"]
    assert fields[0]["field"] == "callback" and "non-public" in fields[0]["message"]


def test_the_allow_list_limits_webhook_hosts_and_still_checks_their_addresses(
    runner: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_WEBHOOK_ALLOWED_HOSTS="hooks.internal.test, 127.0.0.1")
    other = call_api(
        runner,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": "x", "callback": "http://example.com/h"},
    )
    assert other.status == 422 and "allow-list" in other.body["error"]["message"]
    trusted = call_api(
        runner,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": "y", "callback": "http://127.0.0.1:9/h"},
    )
    assert trusted.status == 422 and "non-public" in trusted.body["error"]["details"]["fields"][0]["message"]
    set_env(PROMPTLAB_WEBHOOK_ALLOW_LOOPBACK="true")  # a receiver on this machine, locally, by explicit choice
    allowed = call_api(
        runner,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": "z", "callback": "http://127.0.0.1:9/h"},
    )
    assert allowed.status == 202


def test_outside_local_mode_webhooks_need_https_and_loopback_stays_refused(
    runner: LocalRunner, template: dict[str, Any], set_env: SetEnv
) -> None:
    set_env(
        PROMPTLAB_MODE="aws",
        PROMPTLAB_WEBHOOK_ALLOW_LOOPBACK="true",
        PROMPTLAB_DEFAULT_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
    )
    plain = call_api(
        runner, "POST", "/generate", body={"templateId": template["id"], "input": "x", "callback": "http://a.test/h"}
    )
    assert plain.status == 422 and "https" in plain.body["error"]["details"]["fields"][0]["message"]
    loop = call_api(
        runner,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": "y", "callback": "https://127.0.0.1/h"},
    )
    assert loop.status == 422 and "non-public" in loop.body["error"]["details"]["fields"][0]["message"]


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(clean_queues: LocalRunner) -> None:
    old = webhook_signing.signing_keys("default").current
    new = webhook_signing.rotate("default")
    keys = webhook_signing.signing_keys("default")
    assert keys.all() == [new, old]
    headers = webhook_signing.signature_headers(keys, message_id="m1", timestamp=utc_now(), body=b'{"a":1}')
    assert Webhook(old).verify(b'{"a":1}', headers) == {"a": 1}  # a receiver not yet switched
    assert Webhook(new).verify(b'{"a":1}', headers) == {"a": 1}


def test_a_target_that_turns_private_after_submit_is_refused_at_delivery_not_retried(
    clean_queues: LocalRunner, template: dict[str, Any], receiver: Receiver, set_env: SetEnv
) -> None:
    made = generate(clean_queues, template, callback=receiver.url)  # loopback allowed (the receiver fixture)
    set_env(PROMPTLAB_WEBHOOK_ALLOW_LOOPBACK="", PROMPTLAB_WEBHOOK_BACKOFF_SECONDS="[0]")
    drain_queues(clean_queues)
    drain_queues(clean_queues, function="NotifierFunction")
    assert receiver.received == []
    deliveries = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body["notifications"]
    assert len(deliveries) == 1 and deliveries[0]["delivered"] is False
    assert deliveries[0]["error"].startswith("refused: 127.0.0.1 resolves to a non-public address")


def test_redirects_are_not_followed(
    clean_queues: LocalRunner, template: dict[str, Any], receiver: Receiver, set_env: SetEnv
) -> None:
    set_env(PROMPTLAB_WEBHOOK_BACKOFF_SECONDS="[0]", PROMPTLAB_WEBHOOK_MAX_ATTEMPTS="1")
    receiver.statuses[:] = [302]
    made = generate(clean_queues, template, callback=receiver.url)
    drain_queues(clean_queues)
    drain_queues(clean_queues, function="NotifierFunction")
    assert len(receiver.received) == 1
    deliveries = call_api(clean_queues, "GET", f"/jobs/{made['id']}").body["notifications"]
    assert deliveries[0]["error"] == "webhook answered 302" and deliveries[0]["delivered"] is False


def test_a_label_move_is_a_signed_tenant_event(clean_queues: LocalRunner, receiver: Receiver, set_env: SetEnv) -> None:
    set_env(PROMPTLAB_WEBHOOK_BACKOFF_SECONDS="[0]")
    # Given the tenant's admin pointing its events at a receiver
    assert call_api(clean_queues, "PUT", "/webhooks", body={"url": receiver.url}).status == 200
    assert call_api(clean_queues, "GET", "/webhooks").body == {"url": receiver.url}
    made = call_api(clean_queues, "POST", "/templates", body={"name": f"ev-{uuid.uuid4().hex[:6]}", "body": "v1"}).body
    call_api(clean_queues, "PUT", f"/templates/{made['id']}", body={"name": made["name"], "body": "v2"})
    try:
        # When a label moves
        assert (
            call_api(clean_queues, "PUT", f"/templates/{made['id']}/labels/production", body={"version": 2}).status
            == 200
        )
        drain_queues(clean_queues, function="NotifierFunction")
    finally:
        call_api(clean_queues, "PUT", "/webhooks", body={"url": None})
    # Then the receiver gets `template.label.moved`, signed as Standard Webhooks, retried after its 500
    assert len(receiver.received) == 2
    (first, _), (headers, body) = receiver.received
    assert headers["x-promptlab-event"] == "template.label.moved" and first["webhook-id"] == headers["webhook-id"]
    event = guide_verifier()(webhook_signing.signing_keys("default").current, body, headers)  # as the guide does
    assert event["type"] == "template.label.moved" and event["tenantId"] == "default"
    assert event["data"] == {"templateId": made["id"], "label": "production", "fromVersion": None, "toVersion": 2,
                             "movedBy": event["data"]["movedBy"]}  # fmt: skip


def test_a_batch_that_ends_is_a_signed_tenant_event(
    clean_queues: LocalRunner, receiver: Receiver, economy_now: SetEnv
) -> None:
    from promptlab.jobs import economy, openai_batches, openai_files
    from promptlab.models.openai_batches import BatchCreate
    from promptlab.tenancy.auth import Principal

    economy_now(PROMPTLAB_WEBHOOK_BACKOFF_SECONDS="[0]")
    assert call_api(clean_queues, "PUT", "/webhooks", body={"url": receiver.url}).status == 200
    owner = Principal(tenant_id="default")
    line = {"custom_id": "one", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "fake/fake-1", "messages": [{"role": "user", "content": uuid.uuid4().hex}]}}  # fmt: skip
    try:
        # Given a batch of one line, run through the fake provider's batch API to its end
        made = openai_files.create_file(principal=owner, filename="in.jsonl", purpose="batch",
                                        content=json.dumps(line).encode())  # fmt: skip
        batch = openai_batches.create_batch(principal=owner, request=BatchCreate(
            input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h"))  # fmt: skip
        for _ in range(3):
            economy.run()
        ended = openai_batches.get_batch(tenant_id="default", batch_id=batch.id)
        assert ended.status == "completed" and ended.output_file_id is not None
        drain_queues(clean_queues, function="NotifierFunction")
    finally:
        call_api(clean_queues, "PUT", "/webhooks", body={"url": None})
    # Then the tenant's events URL receives `batch.completed` naming it, signed as Standard Webhooks
    headers, body = receiver.received[-1]
    event = Webhook(webhook_signing.signing_keys("default").current).verify(body, headers)
    assert event["type"] == "batch.completed" and event["data"] == {"id": batch.id}


@pytest.mark.parametrize("url", ["http://[", "http://[::1", "https://exa mple.com:99999/x"])
def test_a_malformed_events_url_is_a_422_naming_it(runner: LocalRunner, url: str) -> None:
    answer = call_api(runner, "PUT", "/webhooks", body={"url": url})
    assert answer.status == 422, answer.body
    assert answer.body["error"]["details"]["fields"][0]["field"] == "url"
