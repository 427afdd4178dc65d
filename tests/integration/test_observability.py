"""Logs carry the correlation id from the API request to the worker, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from promptlab.core.observability import logger
from promptlab.local.runner import LocalRunner
from tests.support import SetEnv, api_event, drain_queues, unique


def test_one_correlation_id_follows_a_job_and_no_secret_is_logged(clean_queues: LocalRunner, set_env: SetEnv) -> None:
    runner = clean_queues
    provider_key = "sk-test-" + unique("secret")
    set_env(ANTHROPIC_API_KEY=provider_key)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    try:
        template = runner.invoke(
            "ApiFunction", api_event(runner, "POST", "/templates", body={"name": unique("log"), "body": "Say {{ t }}."})
        )
        template_id = json.loads(template["body"])["id"]
        event = api_event(runner, "POST", "/generate", body={"templateId": template_id, "input": "private words"})
        request_id = event["requestContext"]["requestId"]
        accepted = runner.invoke("ApiFunction", event)
        job_id = json.loads(accepted["body"])["id"]
        drain_queues(runner)
    finally:
        logger._logger.removeHandler(handler)
    text = buffer.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    about_job = [line for line in lines if line.get("job_id") == job_id]
    messages = {line["message"] for line in about_job}
    assert {"job accepted", "job completed"} <= messages
    assert all(line.get("correlation_id") == request_id for line in about_job), about_job
    assert all(line.get("template_id") == template_id for line in about_job if line["message"] == "job completed")
    assert runner.dev_key is not None and runner.dev_key not in text and provider_key not in text
    assert "private words" not in text  # prompts and outputs stay out of the logs
    # Every line names the function that logged it (one process hosts them all locally)
    by_message = {line["message"]: line for line in about_job}
    assert by_message["job accepted"]["function_name"].endswith("-ApiFunction")
    assert by_message["job completed"]["function_name"].endswith("-WorkerFunction")
    assert by_message["job completed"]["function_memory_size"] != by_message["job accepted"]["function_memory_size"]
    assert by_message["job completed"]["function_request_id"] != by_message["job accepted"]["function_request_id"]


def test_emf_metrics_count_what_happened(clean_queues: LocalRunner, set_env: SetEnv, capsys: Any) -> None:
    runner = clean_queues
    set_env(POWERTOOLS_METRICS_DISABLED="false")
    template = runner.invoke(
        "ApiFunction", api_event(runner, "POST", "/templates", body={"name": unique("m"), "body": "Say {{ t }}."})
    )
    body = {"templateId": json.loads(template["body"])["id"], "input": unique("metric")}
    runner.invoke("ApiFunction", api_event(runner, "POST", "/generate", body=body))
    drain_queues(runner)
    runner.invoke("ApiFunction", api_event(runner, "POST", "/generate", body=body))
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for d in documents for block in d["_aws"]["CloudWatchMetrics"] for m in block["Metrics"]}
    assert {"JobsAccepted", "JobsCompleted", "CacheHits", "ProviderLatency", "InputTokens", "CostMicroUSD"} <= names
    assert all(block["Namespace"] == "PromptLab" for d in documents for block in d["_aws"]["CloudWatchMetrics"])


def test_every_request_logs_one_line_with_its_key_id_never_the_key(runner: LocalRunner, captured_logs: Any) -> None:
    import json

    from promptlab.tenancy import auth
    from tests.support import call_api, unique

    made = auth.create_key(name=unique("access"))
    buffer = captured_logs
    answer = call_api(runner, "GET", "/templates", api_key=made.key)
    # (the fixture hears the shared logger and the root one: each line twice)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if '"message":"request"' in line]
    assert {(line["request_id"], line["location"]) for line in lines} == {
        (answer.header("X-Request-Id"), lines[0]["location"])
    }
    line = lines[0]
    assert line["request_id"] == answer.header("X-Request-Id") and line["key_id"] == made.id
    assert line["status"] == 200 and line["route"] == "/templates" and line["latency_ms"] >= 0
    assert made.key not in buffer.getvalue()
