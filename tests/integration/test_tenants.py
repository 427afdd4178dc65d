"""API keys and tenants: auth, isolation on every route, per-key limits, budgets, usage."""

from __future__ import annotations

import json
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest

from promptlab.jobs import openai_batches, openai_files
from promptlab.local.runner import LocalRunner
from promptlab.models.openai_batches import BatchCreate
from promptlab.tenancy import auth
from promptlab.tenancy.auth import Principal
from tests.support import SetEnv, call_api, drain_queues, rows, unique


def job_through_worker_as(runner: LocalRunner, key: str, body: dict[str, Any]) -> dict[str, Any]:
    submitted = call_api(runner, "POST", "/generate", api_key=key, body=body).body
    drain_queues(runner)
    job: dict[str, Any] = call_api(runner, "GET", f"/jobs/{submitted['id']}", api_key=key).body
    assert job["status"] == "completed", job
    return job


def new_key(**limits: Any) -> str:
    return auth.create_key(name=unique("key"), **limits).key


def test_requests_need_a_live_key(runner: LocalRunner) -> None:
    missing = call_api(runner, "GET", "/templates", api_key=None)
    assert missing.status == 401 and missing.body["error"]["code"] == "unauthorized"
    assert missing.header("WWW-Authenticate") == 'Bearer realm="promptlab"'
    assert "Authorization: Bearer" in missing.body["error"]["message"]
    assert call_api(runner, "GET", "/templates", api_key="pl_not-a-key").status == 401
    assert call_api(runner, "GET", "/health", api_key=None).status == 200  # public, for load balancers
    assert call_api(runner, "GET", "/openapi.json", api_key=None).status == 200

    key = new_key()
    by_header = call_api(runner, "GET", "/templates", api_key=None, headers={"X-API-Key": key})
    assert by_header.status == 200
    revoked = auth.revoke_key(key[:11])
    assert revoked.revoked_at is not None
    assert call_api(runner, "GET", "/templates", api_key=key).status == 401


def test_auth_off_acts_for_the_default_tenant(runner: LocalRunner, set_env: SetEnv) -> None:
    made = call_api(runner, "POST", "/templates", body={"name": unique("dflt"), "body": "Say {{ x }}."}).body
    set_env(PROMPTLAB_AUTH="off")
    seen = call_api(runner, "GET", f"/templates/{made['id']}", api_key=None)
    assert seen.status == 200  # the development key belongs to the default tenant too


def test_a_second_tenant_sees_nothing_of_the_first_on_any_route(runner: LocalRunner) -> None:
    first = call_api(runner, "POST", "/templates", body={"name": unique("mine"), "body": "Explain {{ t }}."}).body
    job = call_api(runner, "POST", "/generate", body={"templateId": first["id"], "input": unique("in")}).body
    failed = call_api(runner, "POST", "/generate", body={"templateId": first["id"], "input": unique("in")}).body
    rows("UPDATE jobs SET status = 'failed' WHERE id = %s RETURNING id", failed["id"])
    other = new_key()
    tid, jid = first["id"], job["id"]

    def as_other(method: str, path: str, **kwargs: Any) -> Any:
        return call_api(runner, method, path, api_key=other, **kwargs)

    checked: set[tuple[str, str]] = set()

    def expect(method: str, route: str, path: str, status: int, **kwargs: Any) -> Any:
        answer = as_other(method, path, **kwargs)
        assert answer.status == status, (method, path, answer.body)
        checked.add((method, route))
        return answer

    body = {"name": first["name"], "body": "Hijack {{ t }}."}
    expect("GET", "/templates/{id}", f"/templates/{tid}", 404)
    expect("PUT", "/templates/{id}", f"/templates/{tid}", 404, body=body)
    expect("DELETE", "/templates/{id}", f"/templates/{tid}", 404)
    expect("GET", "/templates/{id}/versions", f"/templates/{tid}/versions", 404)
    expect("POST", "/templates/{id}/restore", f"/templates/{tid}/restore", 404)
    expect("POST", "/templates/{id}/render", f"/templates/{tid}/render", 404, body={"input": "x"})
    expect("GET", "/templates/{id}/labels", f"/templates/{tid}/labels", 404)
    expect("PUT", "/templates/{id}/labels/{label}", f"/templates/{tid}/labels/production", 404, body={"version": 1})
    expect("GET", "/templates/{id}/versions/{a}/diff/{b}", f"/templates/{tid}/versions/1/diff/1", 404)
    assert expect("GET", "/templates", "/templates", 200).body["items"] == []
    # The same name is free in another tenant: names are unique per tenant.
    expect("POST", "/templates", "/templates", 201, body=body)
    expect("POST", "/generate", "/generate", 404, body={"templateId": tid, "input": "x"})
    assert as_other("POST", "/generate", body={"templateId": f"{tid}@1", "input": "x"}).status == 404
    items = {"items": [{"templateId": tid, "input": "x"}]}
    batch = expect("POST", "/generate/batch", "/generate/batch", 202, body=items)
    assert batch.body["items"][0]["error"]["code"] == "not_found"
    expect("GET", "/jobs/{id}", f"/jobs/{jid}", 404)
    assert expect("GET", "/jobs", "/jobs", 200).body["items"] == []
    expect("POST", "/jobs/{id}/cancel", f"/jobs/{jid}/cancel", 404)
    expect("POST", "/jobs/{id}/retry", f"/jobs/{failed['id']}/retry", 404)
    expect("DELETE", "/jobs/{id}", f"/jobs/{failed['id']}", 404)
    assert expect("POST", "/dlq/redrive", "/dlq/redrive", 200, body={"jobId": failed["id"]}).body["redriven"] == []
    assert expect("GET", "/usage", "/usage", 200).body["totals"]["requests"] == 0
    assert expect("GET", "/batches", "/batches", 200).body["items"] == []
    from promptlab.db.connection import connection

    with connection() as conn:
        conn.execute(
            "INSERT INTO provider_batches (id, tenant_id, provider, model, status, request_count)"
            " VALUES (%s, 'default', 'fake', 'fake-1', 'ended', 0)",
            (bid := f"bat_{unique('iso')}",),
        )
    expect("GET", "/batches/{id}", f"/batches/{bid}", 404)
    dataset = call_api(runner, "POST", "/datasets", body={"name": unique("iso"), "rows": [{"input": {"t": "x"}}]})
    did = dataset.body["id"]
    expect("POST", "/datasets", "/datasets", 201, body={"name": unique("theirs"), "rows": [{"input": {"t": "y"}}]})
    assert did not in {d["id"] for d in expect("GET", "/datasets", "/datasets", 200).body["items"]}
    expect("GET", "/datasets/{id}", f"/datasets/{did}", 404)
    expect("PUT", "/datasets/{id}", f"/datasets/{did}", 404, body={"rows": [{"input": {"t": "z"}}]})
    expect("GET", "/datasets/{id}/rows", f"/datasets/{did}/rows", 404)
    expect("DELETE", "/datasets/{id}", f"/datasets/{did}", 404)
    expect("POST", "/datasets/uploads", "/datasets/uploads", 201, body={"format": "jsonl"})  # their own upload
    experiment = {"datasetId": did, "variants": [{"template": tid}]}
    expect("POST", "/experiments", "/experiments", 422, body=experiment)  # their dataset and template are unknown
    eid = call_api(runner, "POST", "/experiments", body=experiment).body["id"]
    assert expect("GET", "/experiments", "/experiments", 200).body["items"] == []
    expect("GET", "/experiments/{id}", f"/experiments/{eid}", 404)
    expect("GET", "/experiments/{id}/results", f"/experiments/{eid}/results", 404)
    expect("GET", "/experiments/{id}/compare", f"/experiments/{eid}/compare", 404, query={"a": "0", "b": "0"})
    expect("POST", "/experiments/{id}/cancel", f"/experiments/{eid}/cancel", 404)
    expect("POST", "/experiments/{id}/promote", f"/experiments/{eid}/promote", 404, body={"variant": 0})
    # The OpenAI door: their template is an unknown model here; the model list holds no data of anyone's
    chat = expect("POST", "/v1/chat/completions", "/v1/chat/completions", 404, body={"model": tid, "messages": []})
    assert chat.body["error"]["code"] == "model_not_found"
    expect("GET", "/v1/models", "/v1/models", 200)
    # Their files and batches: another tenant's ids are unknown (404), their lists hold none of ours
    line = {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "fake/fake-1", "messages": [{"role": "user", "content": "hi"}]}}  # fmt: skip
    owner = Principal(tenant_id="default")
    fid = openai_files.create_file(
        principal=owner, filename="in.jsonl", purpose="batch", content=json.dumps(line).encode()
    ).id
    bid = openai_batches.create_batch(principal=owner, request=BatchCreate(
        input_file_id=fid, endpoint="/v1/chat/completions", completion_window="24h")).id  # fmt: skip
    expect("GET", "/v1/files/{file_id}", f"/v1/files/{fid}", 404)
    expect("GET", "/v1/files/{file_id}/content", f"/v1/files/{fid}/content", 404)
    expect("DELETE", "/v1/files/{file_id}", f"/v1/files/{fid}", 404)
    assert fid not in {f["id"] for f in expect("GET", "/v1/files", "/v1/files", 200).body["data"]}
    expect("POST", "/v1/files", "/v1/files", 400, body={"purpose": "batch"})  # a form is needed; nothing of ours
    upload = expect("POST", "/v1/files/uploads", "/v1/files/uploads", 201).body  # its own key prefix
    assert "/uploads/" in upload["url"] and "/uploads/default/" not in upload["url"]
    batch = {"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    expect("POST", "/v1/batches", "/v1/batches", 404, body=batch)
    expect("GET", "/v1/batches/{batch_id}", f"/v1/batches/{bid}", 404)
    expect("POST", "/v1/batches/{batch_id}/cancel", f"/v1/batches/{bid}/cancel", 404)
    assert bid not in {b["id"] for b in expect("GET", "/v1/batches", "/v1/batches", 200).body["data"]}
    # Keys and the audit log: their own only; the first tenant's key is unknown to them
    mine_key = rows("SELECT id FROM api_keys WHERE tenant_id = 'default' ORDER BY created_at LIMIT 1")[0]["id"]
    expect("POST", "/keys", "/keys", 201, body={"name": unique("theirs")})
    assert mine_key not in {k["id"] for k in expect("GET", "/keys", "/keys", 200).body["items"]}
    expect("PATCH", "/keys/{id}", f"/keys/{mine_key}", 404, body={"name": "stolen"})
    expect("POST", "/keys/{id}/rotate", f"/keys/{mine_key}/rotate", 404, body={})
    expect("DELETE", "/keys/{id}", f"/keys/{mine_key}", 404)
    assert all(e["targetId"] != tid for e in expect("GET", "/audit", "/audit", 200).body["items"])
    assert expect("GET", "/webhooks", "/webhooks", 200).body == {"url": None}  # the first tenant's is not theirs
    expect("PUT", "/webhooks", "/webhooks", 200, body={"url": None})
    expect("GET", "/health", "/health", 200)
    expect("GET", "/openapi.json", "/openapi.json", 200)
    expect("GET", "/docs", "/docs", 200)  # Swagger UI and its assets hold no data of anyone's
    expect("GET", "/docs/{name}", "/docs/swagger-ui.min.css", 200)
    expect("OPTIONS", "/{proxy+}", f"/jobs/{jid}", 204)
    assert "PromptLab" in expect("GET", "/", "/", 200).body  # the console page holds no data of anyone's
    expect("GET", "/assets/{name}", "/assets/app.js", 200)  # a CORS preflight reveals nothing either

    assert runner.stack is not None
    every_route = {(route.method.upper(), route.path) for route in runner.stack.routes}
    assert every_route - checked == set(), "a route was added without an isolation check"
    # And the owner still sees everything, unchanged.
    mine = call_api(runner, "GET", f"/templates/{tid}")
    assert mine.status == 200 and mine.body["version"] == 1 and mine.body["body"] == "Explain {{ t }}."
    assert call_api(runner, "GET", f"/jobs/{jid}").body["status"] == "queued"
    assert call_api(runner, "GET", f"/jobs/{failed['id']}").body["input"] is not None  # not purged


def test_a_key_with_a_request_limit_is_limited_across_addresses(runner: LocalRunner) -> None:
    key = new_key(rpm_limit=3)
    statuses = [call_api(runner, "GET", "/templates", api_key=key).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = call_api(runner, "GET", "/templates", api_key=key)
    assert limited.header("X-RateLimit-Limit") == "3" and limited.header("Retry-After") is not None


def budget_row(key_id: str) -> dict[str, Any]:
    found = rows("SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s", key_id)
    return found[0] if found else {"spent_usd": Decimal(0), "reserved_usd": Decimal(0)}


def test_a_budget_reserves_the_worst_case_and_settles_to_the_real_cost(clean_queues: LocalRunner) -> None:
    runner = clean_queues
    made = auth.create_key(name=unique("budget"), monthly_budget_usd=Decimal("0.01"))
    template = call_api(
        runner, "POST", "/templates", api_key=made.key, body={"name": unique("b"), "body": "Explain {{ t }}."}
    ).body
    # fake-1: $1 / M input, $5 / M output; maxTokens 1000 → worst case ≈ $0.005 + input bytes.
    body = {"templateId": template["id"], "input": "budgets", "maxTokens": 1000}
    first = call_api(runner, "POST", "/generate", api_key=made.key, body=body)
    assert first.status == 202
    reserved = budget_row(made.id)["reserved_usd"]
    assert Decimal("0.005") < reserved < Decimal("0.0051")
    refused = call_api(runner, "POST", "/generate", api_key=made.key, body={**body, "input": "more"})
    assert refused.status == 402 and refused.body["error"]["code"] == "budget_exceeded"
    details = refused.body["error"]["details"]
    assert details["limitUSD"] == "0.01" and details["spentUSD"] == "0" and details["budget"]["keyId"] == made.id
    assert Decimal(details["reservedUSD"]) == reserved and Decimal(details["requestedUSD"]) > 0

    drain_queues(runner)
    job = call_api(runner, "GET", f"/jobs/{first.body['id']}", api_key=made.key).body
    assert job["status"] == "completed"
    settled = budget_row(made.id)
    assert settled["reserved_usd"] == 0 and settled["spent_usd"] == Decimal(job["estimatedCostUSD"])
    # A repeat is a cache hit: free, and never blocked by the budget.
    for _ in range(3):
        hit = call_api(runner, "POST", "/generate", api_key=made.key, body=body)
        assert hit.status == 200 and hit.body["cacheHit"] is True and hit.body["estimatedCostUSD"] == "0"
    assert budget_row(made.id)["spent_usd"] == Decimal(job["estimatedCostUSD"])


def test_a_failed_job_releases_its_reservation(clean_queues: LocalRunner, set_env: SetEnv) -> None:
    made = auth.create_key(name=unique("budget"), monthly_budget_usd=Decimal("1"))
    template = call_api(
        clean_queues, "POST", "/templates", api_key=made.key, body={"name": unique("b"), "body": "Do {{ t }}."}
    ).body
    set_env(PROMPTLAB_FAKE_FAIL_STATUS="400")
    body = {"templateId": template["id"], "input": "x"}
    answer = call_api(clean_queues, "POST", "/generate", api_key=made.key, body=body)
    assert budget_row(made.id)["reserved_usd"] > 0
    drain_queues(clean_queues)
    assert call_api(clean_queues, "GET", f"/jobs/{answer.body['id']}", api_key=made.key).body["status"] == "failed"
    assert budget_row(made.id) == {"spent_usd": 0, "reserved_usd": 0}


def test_concurrent_requests_never_overspend_a_budget(runner: LocalRunner) -> None:
    made = auth.create_key(name=unique("race"), monthly_budget_usd=Decimal("0.0205"))
    template = call_api(
        runner, "POST", "/templates", api_key=made.key, body={"name": unique("r"), "body": "{{ t }}"}
    ).body
    statuses: list[int] = []
    lock = threading.Lock()

    def submit(n: int) -> None:
        for i in range(5):
            body = {"templateId": template["id"], "input": f"{n}-{i}", "maxTokens": 1000}  # ≈ $0.005 each
            status = call_api(runner, "POST", "/generate", api_key=made.key, body=body).status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(statuses)) == [202, 402]
    assert statuses.count(202) == 4  # 4 × ~$0.00503 fits in $0.0205; a fifth would not
    assert budget_row(made.id)["reserved_usd"] <= Decimal("0.0205")


def test_usage_matches_the_sum_of_the_jobs(clean_queues: LocalRunner) -> None:
    runner = clean_queues
    key = new_key()
    template = call_api(runner, "POST", "/templates", api_key=key, body={"name": unique("u"), "body": "{{ t }}"}).body
    for text in ("alpha", "beta", "gamma"):
        call_api(runner, "POST", "/generate", api_key=key, body={"templateId": template["id"], "input": text})
    drain_queues(runner)
    hit = call_api(runner, "POST", "/generate", api_key=key, body={"templateId": template["id"], "input": "alpha"})
    assert hit.body["cacheHit"] is True
    jobs = call_api(runner, "GET", "/jobs", api_key=key).body["items"]
    report = call_api(runner, "GET", "/usage", api_key=key, query={"groupBy": "model"}).body
    assert [item["key"] for item in report["items"]] == ["fake:fake-1"]
    totals = report["totals"]
    provider_jobs = [j for j in jobs if not j["cacheHit"]]
    assert totals["requests"] == len(jobs) == 4 and totals["cacheHits"] == 1 and totals["completed"] == 4
    assert totals["inputTokens"] == sum(j["inputTokens"] for j in provider_jobs)
    assert totals["outputTokens"] == sum(j["outputTokens"] for j in provider_jobs)
    assert Decimal(totals["costUSD"]) == sum(Decimal(j["estimatedCostUSD"]) for j in jobs)
    assert Decimal(totals["savedUSD"]) == Decimal(hit.body["savedCostUSD"]) > 0
    assert report["items"][0] == {**totals, "key": "fake:fake-1"}
    by_day = call_api(runner, "GET", "/usage", api_key=key, query={"groupBy": "day"}).body
    assert sum(item["requests"] for item in by_day["items"]) == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [({"groupBy": "week"}, "groupBy"), ({"from": "2026-01-02", "to": "2026-01-01"}, "from"), ({"to": "soon"}, "to")],
)
def test_bad_usage_queries_name_the_field(runner: LocalRunner, query: dict[str, str], field: str) -> None:
    answer = call_api(runner, "GET", "/usage", query=query)
    assert answer.status == 422 and [f["field"] for f in answer.body["error"]["details"]["fields"]] == [field]


def test_the_keys_and_usage_commands(runner: LocalRunner, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from promptlab.cli.main import main

    name = unique("cli")
    assert main(["keys", "create", "--name", name, "--rpm", "50", "--monthly-budget-usd", "2.5", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert set(made) == {"id", "name", "key", "tenantId"} and made["name"] == name and made["key"].startswith("pl_")
    assert call_api(runner, "GET", "/templates", api_key=made["key"]).status == 200
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert made["id"] in listing and made["key"] not in listing and made["key"][:11] in listing
    # A key without a budget still shows what its jobs cost this month
    free = auth.create_key(name=unique("nobudget"))
    template = call_api(
        runner, "POST", "/templates", api_key=free.key, body={"name": unique("t"), "body": "Hi {{ x }}"}
    )
    job = job_through_worker_as(runner, free.key, {"templateId": template.body["id"], "input": unique("in")})
    assert main(["keys", "list", "--json"]) == 0
    listed = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert Decimal(listed[free.id]["spent_usd"]) == Decimal(job["estimatedCostUSD"]) > 0
    assert listed[free.id]["monthly_budget_usd"] is None and Decimal(listed[free.id]["reserved_usd"]) == 0
    assert main(["keys", "revoke", made["id"]]) == 0
    assert call_api(runner, "GET", "/templates", api_key=made["key"]).status == 401
    assert main(["usage", "--tenant", made["tenantId"], "--group-by", "model"]) == 0
    table = capsys.readouterr().out
    assert "requests" in table and "costUSD" in table and "total" in table


def test_guessing_keys_is_limited_per_address_before_any_lookup(runner: LocalRunner, set_env: SetEnv) -> None:
    # Given an address allowed 3 unknown keys a window
    set_env(PROMPTLAB_RATE_LIMIT_AUTH_FAILURES="3")
    address = f"10.99.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    guesses = [
        call_api(runner, "GET", "/templates", api_key=f"pl_guess_{uuid.uuid4().hex}", source_ip=address).status
        for _ in range(5)
    ]
    # Then the first 3 are 401s and the rest 429s, answered without a database lookup
    assert guesses == [401, 401, 401, 429, 429]
    # And another address is not affected
    assert call_api(runner, "GET", "/templates", api_key="pl_guess_other").status == 401


def test_a_real_key_still_gets_in_from_an_address_that_guessed_too_often(
    runner: LocalRunner, set_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptlab.core.settings import get_settings
    from promptlab.db import keys_repo
    from promptlab.infra.redis_client import get_redis

    # Given an address (a shared NAT) that sent more unknown keys than it may, and Redis's set of live keys
    # lost (a replaced node)
    set_env(PROMPTLAB_RATE_LIMIT_AUTH_FAILURES="3")
    address = f"10.98.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for _ in range(4):
        call_api(runner, "GET", "/templates", api_key=f"pl_guess_{uuid.uuid4().hex}", source_ip=address)
    get_redis().delete(f"{get_settings().redis_prefix}{{auth}}:live")
    # When a colleague behind it uses a key this process has not seen, and a key made a moment ago
    colleague = new_key()
    assert call_api(runner, "GET", "/templates", api_key=colleague, source_ip=address).status == 200
    newcomer = new_key()
    assert call_api(runner, "GET", "/templates", api_key=newcomer, source_ip=address).status == 200
    # Then both got in; a further guess is still refused, without a database lookup
    lookups: list[str] = []
    real_lookup = keys_repo.key_by_hash

    def counted(conn: Any, **kwargs: Any) -> Any:
        lookups.append(kwargs["key_hash"])
        return real_lookup(conn, **kwargs)

    monkeypatch.setattr(keys_repo, "key_by_hash", counted)
    guess = call_api(runner, "GET", "/templates", api_key=f"pl_guess_{uuid.uuid4().hex}", source_ip=address)
    assert guess.status == 429 and lookups == []


def test_unknown_keys_never_push_live_keys_out_of_the_cache(
    runner: LocalRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a live key in the process cache, and a cache of 5 entries
    monkeypatch.setattr(auth, "_CACHE_MAX", 5)
    live = new_key()
    assert call_api(runner, "GET", "/templates", api_key=live).status == 200
    # When 20 made-up keys are tried
    for _ in range(20):
        call_api(runner, "GET", "/templates", api_key=f"pl_flood_{uuid.uuid4().hex}")
    # Then the live key is still answered from the cache
    assert auth.hash_key(live) in auth._cache


def test_the_webhook_secret_command_shows_and_rotates_a_tenants_secret(
    runner: LocalRunner, capsys: pytest.CaptureFixture[str]
) -> None:
    from promptlab.cli.main import main

    tenant = auth.create_key(name=unique("hooks")).tenant_id
    assert main(["tenants", "webhook-secret", "--tenant", tenant]) == 0
    first = capsys.readouterr().out.split()[-1]
    assert main(["tenants", "webhook-secret", "--tenant", tenant]) == 0
    assert capsys.readouterr().out.split()[-1] == first and first.startswith("whsec_")  # made once, then kept
    assert main(["tenants", "webhook-secret", "--tenant", tenant, "--rotate"]) == 0
    rotated = capsys.readouterr().out.split()[-1]
    assert rotated != first and rotated.startswith("whsec_")
    assert main(["tenants", "webhook-secret", "--tenant", "no-such-tenant"]) == 1
    assert capsys.readouterr().err.strip() == "promptlab: not_found: no tenant 'no-such-tenant'"
