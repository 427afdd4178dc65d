"""Nothing left behind, nothing in the logs: a canary value is planted and searched for."""

from __future__ import annotations

import io
import json
import uuid
from decimal import Decimal
from typing import Any

from promptlab.core.settings import get_settings
from promptlab.infra.redis_client import get_redis
from promptlab.jobs.intake import Submission, accept_submission
from promptlab.local.runner import LocalRunner
from promptlab.tenancy import auth
from tests.support import SetEnv, call_api, drain_queues, rows, unique
from tests.support.provider_server import ProviderServer


def tables_holding(canary: str) -> list[str]:
    """Every table of the database with a row whose text contains the canary."""
    names = [
        r["table_name"]
        for r in rows(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
    ]
    return [name for name in names if rows(f'SELECT 1 FROM "{name}" t WHERE t::text LIKE %s LIMIT 1', f"%{canary}%")]


def redis_values(key: bytes) -> list[Any]:
    """What a Redis key holds, whatever its type."""
    client: Any = get_redis()
    kind = client.type(key).decode()
    if kind == "string":
        return [client.get(key)]
    if kind == "hash":
        return [*client.hgetall(key).keys(), *client.hgetall(key).values()]
    if kind == "list":
        return list(client.lrange(key, 0, -1))
    if kind == "set":
        return list(client.smembers(key))
    if kind == "zset":
        return list(client.zrange(key, 0, -1))
    return []


def redis_keys_holding(canary: str) -> list[str]:
    """Every Redis key of this run whose name or value contains the canary."""
    found = []
    for key in get_redis().scan_iter(match=f"{get_settings().redis_prefix}*", count=1000):
        if canary.encode() in key or any(canary.encode() in (v or b"") for v in redis_values(key)):
            found.append(key.decode())
    return found


def test_deleting_a_job_leaves_its_input_and_output_nowhere(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv
) -> None:
    # Given a canary in the input of: a job made with an Idempotency-Key, a cache hit that copied its answer,
    # and a JSON-mode job whose invalid answers (kept in its attempts) quote the prompt
    runner = clean_queues
    set_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.url + "/v1")
    canary = f"CANARY{uuid.uuid4().hex}"
    template = call_api(runner, "POST", "/templates", body={"name": unique("p"), "body": "About {{ x }}."}).body
    request = {"templateId": template["id"], "input": canary}
    idempotency_key = unique("idem")
    first = call_api(runner, "POST", "/generate", body=request, headers={"Idempotency-Key": idempotency_key})
    drain_queues(runner)
    copy = call_api(runner, "POST", "/generate", body=request)
    assert copy.status == 200 and copy.body["cacheHit"] and canary in copy.body["output"]
    echo = {**request, "provider": "openai", "model": "json-echo", "responseFormat": {"type": "json_object"}}
    json_job = call_api(runner, "POST", "/generate", body=echo).body
    drain_queues(runner)
    attempts = call_api(runner, "GET", f"/jobs/{json_job['id']}").body["attemptHistory"]
    assert any(canary in json.dumps(a["error"]) for a in attempts)  # the answers quoted the prompt
    assert tables_holding(canary) and redis_keys_holding(canary)

    # When both jobs are deleted
    assert call_api(runner, "DELETE", f"/jobs/{first.body['id']}").status == 204
    assert call_api(runner, "DELETE", f"/jobs/{json_job['id']}").status == 204

    # Then no table, no Redis key and no API answer holds the canary
    assert tables_holding(canary) == []
    assert redis_keys_holding(canary) == []
    answers = [
        call_api(runner, "GET", f"/jobs/{first.body['id']}"),
        call_api(runner, "GET", f"/jobs/{copy.body['id']}"),
        call_api(runner, "GET", f"/jobs/{json_job['id']}"),
        call_api(runner, "GET", "/jobs", query={"limit": "100"}),
        call_api(runner, "POST", "/generate", body=request, headers={"Idempotency-Key": idempotency_key}),  # replay
    ]
    assert all(canary not in json.dumps(a.body) for a in answers)
    # And the accounting stays
    purged = answers[0].body
    assert purged["purgedAt"] is not None and Decimal(purged["estimatedCostUSD"]) > 0


def test_no_error_path_logs_a_prompt_value_or_output(
    clean_queues: LocalRunner, server: ProviderServer, set_env: SetEnv, captured_logs: io.StringIO
) -> None:
    # Given a canary value sent down every error path there is
    runner = clean_queues
    set_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.url + "/v1", PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]")
    canary = f"CANARY{uuid.uuid4().hex}"
    schema = {"type": "object", "properties": {"x": {"type": "string", "enum": ["a", "b"]}}}
    typed = call_api(
        runner, "POST", "/templates", body={"name": unique("t"), "body": "Say {{ x }}.", "variablesSchema": schema}
    ).body
    plain = call_api(runner, "POST", "/templates", body={"name": unique("t"), "body": "Say {{ x }}."}).body
    poor = auth.create_key(name=unique("poor"), monthly_budget_usd=Decimal("0.0000001"))
    poor_template = call_api(
        runner, "POST", "/templates", api_key=poor.key, body={"name": unique("t"), "body": "Say {{ x }}."}
    ).body
    answers = [
        call_api(runner, "POST", "/generate", body={"templateId": typed["id"], "input": {"x": canary}}),  # enum
        call_api(runner, "POST", "/generate", body={"templateId": plain["id"], "input": {canary: "v"}}),  # unknown
        call_api(runner, "POST", "/generate", raw_body='{"templateId": "' + canary),  # malformed JSON
        call_api(runner, "POST", "/generate", body={"templateId": plain["id"], "input": canary * 6_000}),  # cap
        call_api(runner, "POST", "/generate", body={"templateId": plain["id"], "input": canary * 30_000}),  # 413
        call_api(runner, "POST", "/generate", body={"templateId": canary, "input": canary}),  # unknown template
        call_api(
            runner, "POST", "/generate", api_key=poor.key, body={"templateId": poor_template["id"], "input": canary}
        ),
        call_api(
            runner,
            "POST",
            "/generate",
            body={"templateId": plain["id"], "input": canary, "callback": "ftp://x/" + canary},
        ),
        call_api(runner, "POST", f"/templates/{plain['id']}/render", body={"input": {canary: 1}}),
        call_api(
            runner, "POST", "/generate/batch", body={"items": [{"templateId": typed["id"], "input": {"x": canary}}]}
        ),
    ]
    assert sorted({a.status for a in answers}) == [202, 400, 402, 404, 413, 422], [a.status for a in answers]
    # Worker paths: invalid JSON answers quoting the prompt, a permanent provider error, retries
    for model in ("json-echo", "status-400", "status-529"):
        body = {"templateId": plain["id"], "input": f"{canary} {model}", "provider": "openai", "model": model}
        if model == "json-echo":
            body["responseFormat"] = {"type": "json_object"}
        assert call_api(runner, "POST", "/generate", body=body).status == 202
    drain_queues(runner)
    # Intake rejections
    for bad in ({"templateId": typed["id"], "input": {"x": canary}}, {"templateId": canary, "input": "x"}):
        accept_submission(
            Submission(body=json.dumps(bad), message_id=unique("m"), tenant_id=None, api_key=runner.dev_key)
        )
    # Then no captured log line holds the canary
    text = captured_logs.getvalue()
    assert text.count("\n") > 10  # the paths did log
    assert canary not in text
