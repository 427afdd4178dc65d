"""No small request makes a big prompt or a long computation: caps measured before the work."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from promptlab.db.connection import connection
from promptlab.local.runner import LocalRunner
from tests.support import call_api, drain_queues, rows, unique

CAP = 200_000


def fields_of(answer: Any) -> dict[str, str]:
    return {f["field"]: f["message"] for f in answer.body["error"]["details"]["fields"]}


def test_a_small_request_cannot_render_a_huge_prompt(clean_queues: LocalRunner) -> None:
    # Given a template whose body repeats one placeholder 20,000 times (a 100 KB body)
    runner = clean_queues
    body = "{{a}}" * 20_000
    made = call_api(runner, "POST", "/templates", body={"name": unique("amp"), "body": body})
    assert made.status == 201
    request = {"templateId": made.body["id"], "input": "x" * 500}  # ≈ 600 bytes would render 10 MB
    # When it is generated or rendered with a 500-character value
    started = time.monotonic()
    generated = call_api(runner, "POST", "/generate", body=request)
    rendered = call_api(runner, "POST", f"/templates/{made.body['id']}/render", body={"input": "x" * 500})
    # Then both are a 422 on the input naming the cap, answered without building the prompt
    for answer in (generated, rendered):
        assert answer.status == 422 and answer.body["error"]["code"] == "validation_error", answer.body
        assert "200,000" in fields_of(answer)["input"]
    assert time.monotonic() - started < 2
    # And a value that keeps it under the cap is fine
    fits = call_api(runner, "POST", "/generate", body={**request, "input": "x" * 9})
    assert fits.status == 202, fits.body


def test_a_template_whose_defaults_alone_exceed_the_cap_is_refused_on_save(clean_queues: LocalRunner) -> None:
    # Given a variable default of 100,000 characters used three times
    body = "{{ a }} {{ a }} {{ a }}"
    variables = [{"name": "a", "required": False, "default": "d" * 100_000}]
    # When the template is saved
    answer = call_api(
        clean_queues, "POST", "/templates", body={"name": unique("d"), "body": body, "variables": variables}
    )
    # Then it is a 422 naming the variables and the cap
    assert answer.status == 422, answer.body
    assert "over the cap of 200,000" in fields_of(answer)["variables"]
    # And the same with a schema default is a 422 on the schema
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "d" * 100_000}}}
    answer = call_api(
        clean_queues, "POST", "/templates", body={"name": unique("d"), "body": body, "variablesSchema": schema}
    )
    assert answer.status == 422 and "variablesSchema" in fields_of(answer), answer.body


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}}, "properties.a"),
        (
            {"$defs": {"n": {"$ref": "#/$defs/n"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}},
            "$defs.n",
        ),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "properties.a"),
        ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "properties.a"),
    ],
)
def test_a_variable_schema_that_could_run_away_is_refused_when_saved(
    clean_queues: LocalRunner, schema: dict[str, Any], field: str
) -> None:
    started = time.monotonic()
    answer = call_api(
        clean_queues, "POST", "/templates", body={"name": unique("s"), "body": "{{ a }}", "variablesSchema": schema}
    )
    assert answer.status == 422, answer.body
    assert f"variablesSchema.{field}" in fields_of(answer), answer.body
    assert time.monotonic() - started < 1


def test_validation_is_linear_in_the_input(clean_queues: LocalRunner) -> None:
    # Given a schema with a pattern that backtracks exponentially in Python's re, and uniqueItems
    runner = clean_queues
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "pattern": "^(a|a)+$"},
            "b": {"type": "array", "uniqueItems": True},
        },
    }
    made = call_api(
        runner, "POST", "/templates", body={"name": unique("lin"), "body": "{{ a }} {{ b }}", "variablesSchema": schema}
    )
    assert made.status == 201, made.body
    # When the input is crafted for the worst case: 40 a's and a b, 2,000 distinct objects
    started = time.monotonic()
    answer = call_api(
        runner,
        "POST",
        "/generate",
        body={"templateId": made.body["id"], "input": {"a": "a" * 40 + "b", "b": [{"k": i} for i in range(2000)]}},
    )
    # Then the 422 comes at once, naming the field
    assert answer.status == 422 and "input.a" in fields_of(answer), answer.body
    assert time.monotonic() - started < 2


def test_a_recursive_response_format_is_a_422_at_submit(clean_queues: LocalRunner, template: dict[str, Any]) -> None:
    schema = {"$defs": {"n": {"type": "object", "properties": {"c": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"}
    answer = call_api(
        clean_queues,
        "POST",
        "/generate",
        body={"templateId": template["id"], "input": "x", "responseFormat": {"type": "json_schema", "schema": schema}},
    )
    assert answer.status == 422 and any(f.startswith("responseFormat.schema") for f in fields_of(answer)), answer.body


def test_a_schema_that_breaks_the_validator_after_the_call_still_records_the_cost(
    clean_queues: LocalRunner, template: dict[str, Any]
) -> None:
    # Given a queued JSON-mode job whose stored schema the validator cannot handle (stored before schemas
    # were checked: a $ref loop)
    runner = clean_queues
    request = {
        "templateId": template["id"],
        "input": unique("x"),
        "responseFormat": {"type": "json_schema", "schema": {"type": "object"}},
    }
    job = call_api(runner, "POST", "/generate", body=request).body
    looping = {"type": "json_schema", "schema": {"$defs": {"n": {"$ref": "#/$defs/n"}}, "$ref": "#/$defs/n"}}
    with connection() as conn:
        conn.execute(
            "UPDATE jobs SET params = jsonb_set(params, '{responseFormat}', %s::jsonb) WHERE id = %s",
            (json.dumps(looping), job["id"]),
        )
    # When the worker runs it
    drain_queues(runner)
    # Then every call's tokens and cost are recorded and the job ends with the reason, never `interrupted`
    done = call_api(runner, "GET", f"/jobs/{job['id']}").body
    assert done["status"] == "failed" and done["error"]["code"] == "invalid_output", done
    assert done["inputTokens"] > 0 and done["estimatedCostUSD"] is not None
    outcomes = [a["outcome"] for a in rows("SELECT outcome FROM job_attempts WHERE job_id = %s", job["id"])]
    assert "interrupted" not in outcomes and len(outcomes) == 3


def test_a_body_that_never_arrives_does_not_hold_the_gateway(runner: LocalRunner, monkeypatch: Any) -> None:
    import socket
    import threading

    from promptlab.local.gateway import GatewayHandler, GatewayServer

    # Given the local gateway, with its socket timeout shortened for the test (30 s when serving)
    monkeypatch.setattr(GatewayHandler, "timeout", 0.5)
    assert runner.stack is not None
    server = GatewayServer(("127.0.0.1", 0), runner.stack, runner.invoke)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # When a client promises a body and never sends it
        client = socket.create_connection(("127.0.0.1", int(server.server_address[1])), timeout=5)
        client.sendall(
            b"POST /templates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        # Then the gateway hangs up after its timeout (before the client's own 5 s), freeing the thread
        assert client.recv(1024) == b""
        client.close()
    finally:
        server.shutdown()
        server.server_close()
