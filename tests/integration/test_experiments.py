"""Experiments: variants × dataset rows as ordinary jobs, scored, compared, promoted, exported."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from promptlab.local.runner import LocalRunner
from promptlab.tenancy import auth
from tests.support import call_api, drain_queues, rows, unique

# The fake provider answers "Fake answer for: <the prompt's first 60 characters>. …": a ticket quoted early
# in the prompt shows in the answer (contains → 1), one quoted after 60 characters does not (→ 0).
EARLY = "Label: {{ ticket }}"
LATE = "Read the customer's message below with care and then give it a label. Message: {{ ticket }}"
JUDGE = "Input: {{ input }}\nExpected: {{ expected }}\nAnswer: {{ output }}\nScore the answer from 0 to 1."


def make_template(runner: LocalRunner, body: str, **fields: Any) -> dict[str, Any]:
    made = call_api(runner, "POST", "/templates", body={"name": unique("exp"), "body": body, **fields})
    assert made.status == 201, made.body
    template: dict[str, Any] = made.body
    return template


def make_dataset(runner: LocalRunner, count: int) -> dict[str, Any]:
    lines = [json.dumps({"input": {"ticket": f"refund{i} please"}, "expected": f"refund{i}"}) for i in range(count)]
    made = call_api(
        runner, "POST", "/datasets", body={"name": unique("ds"), "format": "jsonl", "content": "\n".join(lines)}
    )
    assert made.status == 201, made.body
    dataset: dict[str, Any] = made.body
    return dataset


def two_versions(runner: LocalRunner) -> dict[str, Any]:
    template = make_template(runner, LATE)
    changed = call_api(runner, "PUT", f"/templates/{template['id']}", body={"name": template["name"], "body": EARLY})
    assert changed.status == 200 and changed.body["version"] == 2
    return template


def start(runner: LocalRunner, body: dict[str, Any], **kwargs: Any) -> Any:
    return call_api(runner, "POST", "/experiments", body=body, **kwargs)


def run_to_end(runner: LocalRunner, experiment_id: str, **kwargs: Any) -> dict[str, Any]:
    for _ in range(5):  # the judges' jobs are queued as the answers they judge end
        drain_queues(runner)
    found: dict[str, Any] = call_api(runner, "GET", f"/experiments/{experiment_id}", **kwargs).body
    return found


def test_two_versions_scored_compared_promoted_and_exported(clean_queues: LocalRunner) -> None:
    runner = clean_queues
    # Given a 20-row dataset, a template at versions 1 (ticket late) and 2 (ticket early), and a judge
    template = two_versions(runner)
    judge = make_template(runner, JUDGE)
    dataset = make_dataset(runner, 20)
    tid = template["id"]
    body = {
        "datasetId": dataset["id"],
        "name": "late vs early",
        "variants": [{"template": f"{tid}@1"}, {"template": f"{tid}@2", "params": {"maxTokens": 200}}],
        "scorers": [{"type": "contains"}, {"type": "judge", "template": judge["id"], "name": "quality"}],
    }

    # When it runs
    started = start(runner, body)
    assert started.status == 201, started.body
    assert started.header("Location") == f"/experiments/{started.body['id']}"
    eid = started.body["id"]
    assert started.body["status"] == "running" and started.body["rows"] == 20
    ended = run_to_end(runner, eid)

    # Then every variant answered every row, scored by both scorers, judges billed as their own cost
    assert ended["status"] == "completed" and ended["progress"] == 1.0, ended
    late, early = ended["variants"]
    for variant in (late, early):
        assert (variant["rows"], variant["completed"], variant["failed"]) == (20, 20, 0)
        assert variant["scored"] == {"contains": 20, "quality": 20} and variant["scoreErrors"]["quality"] == 0
        assert Decimal(variant["costUSD"]) > 0 and Decimal(variant["judgeCostUSD"]) > 0
        assert variant["latencyMs"]["p50"] is not None and variant["inputTokens"] > 0
    assert late["scores"]["contains"] == 0.0 and early["scores"]["contains"] == 1.0
    assert (late["templateVersion"], early["templateVersion"]) == (1, 2)
    total = sum(Decimal(v["costUSD"]) + Decimal(v["judgeCostUSD"]) for v in ended["variants"])
    assert Decimal(ended["costUSD"]) == total
    jobs = rows("SELECT count(*) AS n, count(experiment_scorer) AS judged FROM jobs WHERE experiment_id = %s", eid)
    assert jobs == [{"n": 80, "judged": 40}]

    # And the comparison says b is better on every row, with an interval that excludes 0
    compared = call_api(runner, "GET", f"/experiments/{eid}/compare", query={"a": "0", "b": "1", "scorer": "contains"})
    assert compared.status == 200, compared.body
    assert compared.body["pairedRows"] == 20 and compared.body["wins"] == 20 and compared.body["losses"] == 0
    assert compared.body["delta"]["score"] == 1.0
    assert compared.body["delta"]["scoreInterval"] == {"low": 1.0, "high": 1.0, "level": 0.95}
    first = compared.body["rows"][0]
    assert first["scoreA"] == 0.0 and first["scoreB"] == 1.0 and "refund" in first["outputB"]

    # And promoting variant 1 moves `production` to version 2, the history naming the experiment
    promoted = call_api(runner, "POST", f"/experiments/{eid}/promote", body={"variant": 1, "label": "production"})
    assert promoted.status == 200, promoted.body
    assert promoted.body == {
        "experimentId": eid, "templateId": tid, "label": "production", "version": 2, "previousVersion": None,
    }  # fmt: skip
    labels = call_api(runner, "GET", f"/templates/{tid}/labels").body
    assert labels["labels"][0]["version"] == 2 and labels["moves"][0]["experimentId"] == eid
    audited = call_api(runner, "GET", "/audit", query={"action": "experiment.promoted", "targetId": eid}).body["items"]
    assert audited[0]["before"]["version"] is None
    assert audited[0]["after"] == {"templateId": tid, "label": "production", "version": 2}

    # And the joined results download as CSV and JSONL
    text = call_api(runner, "GET", f"/experiments/{eid}/results", query={"format": "csv"})
    assert text.status == 200 and str(text.header("Content-Type")).startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(text.body)))
    assert len(table) == 20 and table[0]["expected"] == "refund0"
    assert table[0]["v0_contains"] == "0.0" and table[0]["v1_contains"] == "1.0" and table[0]["v1_quality"] != ""
    assert json.loads(table[0]["input"]) == {"ticket": "refund0 please"} and table[0]["v1_status"] == "completed"
    lines = call_api(runner, "GET", f"/experiments/{eid}/results", query={"format": "jsonl", "limit": "15"})
    assert lines.header("X-Next-Cursor")
    page = [json.loads(line) for line in lines.body.splitlines()]
    assert len(page) == 15 and page[0]["variants"][1]["scores"]["contains"] == 1.0
    assert lines.status == 200, lines.body
    rest = call_api(
        runner, "GET", f"/experiments/{eid}/results", query={"format": "jsonl", "cursor": lines.header("X-Next-Cursor")}
    )
    assert rest.status == 200, rest.body
    assert [json.loads(line)["row"] for line in rest.body.splitlines()] == list(range(16, 21))

    # And usage groups the experiment's cost under its id
    usage = call_api(runner, "GET", "/usage", query={"groupBy": "experiment"}).body
    mine = next(item for item in usage["items"] if item["key"] == eid)
    assert mine["requests"] == 80 and Decimal(mine["costUSD"]) == total


def test_rows_are_checked_against_each_variant_and_every_bad_row_is_named(runner: LocalRunner) -> None:
    schema = {
        "type": "object",
        "required": ["ticket", "words"],
        "properties": {"ticket": {"type": "string"}, "words": {"type": "integer"}},
    }
    template = make_template(runner, "Answer {{ ticket }} in {{ words }} words.", variablesSchema=schema)
    dataset = call_api(
        runner, "POST", "/datasets",
        body={"name": unique("bad"), "rows": [
            {"input": {"ticket": "ok", "words": 10}}, {"input": {"ticket": "no words"}},
            {"input": {"ticket": "text", "words": "ten"}},
        ]},
    ).body  # fmt: skip
    refused = start(runner, {"datasetId": dataset["id"], "variants": [{"template": template["id"]}]})
    assert refused.status == 422, refused.body
    fields = [f["field"] for f in refused.body["error"]["details"]["fields"]]
    assert any(f.startswith("variants[0].rows[2].input") for f in fields), fields
    assert any(f.startswith("variants[0].rows[3].input.words") for f in fields), fields
    assert not any("rows[1]" in f for f in fields)
    assert rows("SELECT count(*) AS n FROM experiments WHERE dataset_id = %s", dataset["id"]) == [{"n": 0}]


def test_bad_references_and_scorers_are_named(runner: LocalRunner) -> None:
    template = make_template(runner, EARLY)
    dataset = make_dataset(runner, 2)
    cases = [
        ({"datasetId": "ds_missing", "variants": [{"template": template["id"]}]}, "datasetId"),
        ({"datasetId": dataset["id"], "datasetVersion": 7, "variants": [{"template": template["id"]}]},
         "datasetVersion"),
        ({"datasetId": dataset["id"], "variants": [{"template": "tpl_missing"}]}, "variants[0].template"),
        ({"datasetId": dataset["id"], "variants": [{"template": f"{template['id']}@9"}]}, "variants[0].template"),
        ({"datasetId": dataset["id"], "variants": []}, "variants"),
        ({"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
          "scorers": [{"type": "regex", "pattern": "(a)\\1"}]}, "scorers[0].pattern"),
        ({"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
          "scorers": [{"type": "contains"}, {"type": "contains"}]}, "scorers[1].name"),
        ({"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
          "scorers": [{"type": "length"}]}, "scorers[0]"),
        ({"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
          "scorers": [{"type": "judge", "template": "tpl_nope"}]}, "scorers[0].template"),
        ({"datasetId": dataset["id"], "variants": [{"template": template["id"], "provider": "nope"}]}, "variants"),
    ]  # fmt: skip
    for body, field in cases:
        refused = start(runner, body)
        assert refused.status == 422, (body, refused.body)
        fields = [f["field"] for f in refused.body["error"]["details"]["fields"]]
        assert any(f.startswith(field) for f in fields), (field, fields)


def test_the_whole_worst_case_is_reserved_up_front_and_given_back_as_it_settles(clean_queues: LocalRunner) -> None:
    runner = clean_queues
    template = make_template(runner, EARLY)
    judge = make_template(runner, JUDGE)
    dataset = make_dataset(runner, 10)
    body = {
        "datasetId": dataset["id"],
        "variants": [{"template": template["id"], "params": {"maxTokens": 1000}}],
        "scorers": [{"type": "judge", "template": judge["id"]}],
    }
    # Given a key whose budget cannot cover ten 1,000-token answers and their judges
    poor = auth.create_key(name=unique("poor"), tenant_id="default", monthly_budget_usd=Decimal("0.005"))
    refused = start(runner, body, api_key=poor.key)
    assert refused.status == 402 and refused.body["error"]["code"] == "budget_exceeded", refused.body
    details = refused.body["error"]["details"]
    assert Decimal(details["shortfallUSD"]) == Decimal(details["requestedUSD"]) - Decimal("0.005")
    assert "experiment" in refused.body["error"]["message"]
    assert rows("SELECT count(*) AS n FROM jobs WHERE api_key_id = %s", poor.id) == [{"n": 0}]

    # Given one that can: everything is held at the start, and nothing is held once it has ended
    rich = auth.create_key(name=unique("rich"), tenant_id="default", monthly_budget_usd=Decimal("5"))
    started = start(runner, body, api_key=rich.key)
    assert started.status == 201, started.body
    held = rows("SELECT reserved_usd FROM key_budgets WHERE key_id = %s", rich.id)[0]["reserved_usd"]
    jobs_hold = rows("SELECT sum(reserved_cost_usd) AS s FROM jobs WHERE api_key_id = %s", rich.id)[0]["s"]
    experiment_hold = rows("SELECT judge_reserved_usd FROM experiments WHERE id = %s", started.body["id"])[0]
    assert held == jobs_hold + experiment_hold["judge_reserved_usd"] and experiment_hold["judge_reserved_usd"] > 0
    ended = run_to_end(runner, started.body["id"], api_key=rich.key)
    assert ended["status"] == "completed", ended
    budget = rows("SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s", rich.id)[0]
    cost = rows("SELECT sum(estimated_cost_usd) AS s FROM jobs WHERE api_key_id = %s", rich.id)[0]["s"]
    assert budget["reserved_usd"] == 0 and budget["spent_usd"] == cost == Decimal(ended["costUSD"])


def test_cancel_stops_what_has_not_started_and_releases_the_hold(clean_queues: LocalRunner) -> None:
    runner = clean_queues
    template = make_template(runner, EARLY)
    judge = make_template(runner, JUDGE)
    dataset = make_dataset(runner, 6)
    key = auth.create_key(name=unique("cancel"), tenant_id="default", monthly_budget_usd=Decimal("5"))
    body = {"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
            "scorers": [{"type": "judge", "template": judge["id"]}], "cache": False}  # fmt: skip
    started = start(runner, body, api_key=key.key)
    assert started.status == 201, started.body
    eid = started.body["id"]

    cancelled = call_api(runner, "POST", f"/experiments/{eid}/cancel", api_key=key.key)
    assert cancelled.status == 200 and cancelled.body["status"] == "cancelled", cancelled.body
    assert rows("SELECT DISTINCT status FROM jobs WHERE experiment_id = %s", eid) == [{"status": "cancelled"}]
    assert rows("SELECT reserved_usd FROM key_budgets WHERE key_id = %s", key.id)[0]["reserved_usd"] == 0
    again = call_api(runner, "POST", f"/experiments/{eid}/cancel", api_key=key.key)
    assert again.status == 409 and again.body["error"]["code"] == "conflict"
    promoted = call_api(runner, "POST", f"/experiments/{eid}/promote", body={"variant": 3}, api_key=key.key)
    assert promoted.status == 422 and promoted.body["error"]["details"]["fields"][0]["field"] == "variant"


def test_a_running_experiment_cannot_be_promoted_and_a_rerun_is_answered_from_the_cache(
    clean_queues: LocalRunner,
) -> None:
    runner = clean_queues
    template = make_template(runner, EARLY)
    dataset = make_dataset(runner, 5)
    body = {"datasetId": dataset["id"], "variants": [{"template": template["id"]}], "scorers": [{"type": "exact"}]}
    first = start(runner, body).body
    early = call_api(runner, "POST", f"/experiments/{first['id']}/promote", body={"variant": 0})
    assert early.status == 409, early.body
    assert run_to_end(runner, first["id"])["status"] == "completed"

    # When the same experiment runs again: every row is a cache hit, free, scored, and it ends at once
    again = start(runner, body).body
    assert again["status"] == "completed", again
    variant = again["variants"][0]
    assert variant["completed"] == 5 and Decimal(variant["costUSD"]) == 0 and variant["scored"] == {"exact": 5}
    assert variant["scores"]["exact"] == 0.0  # the fake's answer is never exactly the expected label


def test_a_judge_that_cannot_score_records_the_error_on_its_row_and_the_experiment_ends(
    clean_queues: LocalRunner,
) -> None:
    runner = clean_queues
    template = make_template(runner, EARLY)
    judge = make_template(runner, JUDGE)
    dataset = make_dataset(runner, 3)
    body = {"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
            "scorers": [{"type": "judge", "template": judge["id"]}, {"type": "length", "max": 10}]}  # fmt: skip
    eid = start(runner, body).body["id"]
    call_api(runner, "DELETE", f"/templates/{judge['id']}")  # archived: it takes no new generations
    ended = run_to_end(runner, eid)
    assert ended["status"] == "completed", ended
    variant = ended["variants"][0]
    assert variant["scoreErrors"] == {"judge": 3, "length": 0} and variant["scores"] == {"judge": None, "length": 0.0}
    lines = call_api(runner, "GET", f"/experiments/{eid}/results").body.splitlines()
    assert "archived" in json.loads(lines[0])["variants"][0]["scoreErrors"]["judge"]


def test_a_results_page_ends_early_when_its_text_is_large_and_the_pages_cover_every_row_once(
    clean_queues: LocalRunner, monkeypatch: Any
) -> None:
    from promptlab.experiments import results

    runner = clean_queues
    template = make_template(runner, EARLY)
    dataset = make_dataset(runner, 7)
    eid = start(runner, {"datasetId": dataset["id"], "variants": [{"template": template["id"]}] * 2}).body["id"]
    run_to_end(runner, eid)
    # Given pages that may hold about two rows' text
    monkeypatch.setattr(results, "PAGE_CHARS", 1_200)
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"format": "jsonl", "limit": "5", **({"cursor": cursor} if cursor else {})}
        page = call_api(runner, "GET", f"/experiments/{eid}/results", query=query)
        assert page.status == 200, page.body
        seen += [json.loads(line)["row"] for line in page.body.splitlines()]
        pages += 1
        cursor = page.header("X-Next-Cursor")
        if not cursor:
            break
    assert seen == list(range(1, 8)) and pages > 2


def test_a_judge_that_could_render_past_the_prompt_limit_is_refused_at_start(runner: LocalRunner) -> None:
    template = make_template(runner, EARLY)
    greedy = make_template(runner, "{{ output }} {{ output }} {{ output }} {{ input }} {{ expected }}")
    dataset = make_dataset(runner, 2)
    # Given a variant whose answers may be 64,000 tokens: the judge may be shown 80,000 bytes of each, 3 times
    refused = start(
        runner,
        {"datasetId": dataset["id"], "variants": [{"template": template["id"], "params": {"maxTokens": 64000}}],
         "scorers": [{"type": "contains"}, {"type": "judge", "template": greedy["id"]}]},
    )  # fmt: skip
    assert refused.status == 422, refused.body
    assert refused.body["error"]["details"]["fields"][0]["field"] == "scorers[1].template"


def test_a_tenant_runs_a_bounded_number_of_experiments_at_once(runner: LocalRunner, set_env: Any) -> None:
    # Given a tenant of its own, allowed one running experiment
    key = auth.create_key(name=unique("busy")).key
    set_env(PROMPTLAB_MAX_RUNNING_EXPERIMENTS="1", PROMPTLAB_FAKE_LATENCY_MS="3000")  # the first one keeps running
    template = call_api(runner, "POST", "/templates", api_key=key, body={"name": unique("t"), "body": EARLY}).body
    rows_ = [{"input": {"ticket": "x"}}]
    dataset = call_api(runner, "POST", "/datasets", api_key=key, body={"name": unique("d"), "rows": rows_}).body
    body = {"datasetId": dataset["id"], "variants": [{"template": template["id"]}], "cache": False}
    first = start(runner, body, api_key=key)
    assert first.status == 201, first.body
    # When a second starts while the first runs: 429, until the first ends
    second = start(runner, body, api_key=key)
    assert second.status == 429 and second.body["error"]["code"] == "rate_limited", second.body
    assert second.header("Retry-After") == "30"
    call_api(runner, "POST", f"/experiments/{first.body['id']}/cancel", api_key=key)
    assert start(runner, body, api_key=key).status == 201


def test_under_a_realistic_mix_of_provider_faults_every_row_ends_and_the_budget_settles(
    clean_queues: LocalRunner, set_env: Any
) -> None:
    runner = clean_queues
    # Given a provider failing 30 % of calls with 429 (retry-after 0), 500, 503 and 529, retries without waiting
    set_env(
        PROMPTLAB_FAKE_FAIL_STATUS="429,500,503,529", PROMPTLAB_FAKE_FAIL_RATE="0.3",
        PROMPTLAB_FAKE_RETRY_AFTER_SECONDS="0", PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]", PROMPTLAB_THROTTLE="false",
    )  # fmt: skip
    template = make_template(runner, EARLY)
    judge = make_template(runner, JUDGE)
    dataset = make_dataset(runner, 30)
    key = auth.create_key(name=unique("faults"), tenant_id="default", monthly_budget_usd=Decimal("5"))
    body = {"datasetId": dataset["id"], "variants": [{"template": template["id"]}] * 2, "cache": False,
            "scorers": [{"type": "contains"}, {"type": "judge", "template": judge["id"]}]}  # fmt: skip
    started = start(runner, body, api_key=key.key)
    assert started.status == 201, started.body
    eid = started.body["id"]
    # When the workers and the DLQ handler have run until nothing is left
    for _ in range(12):
        drain_queues(runner)
        drain_queues(runner, function="DlqFunction")
        found = call_api(runner, "GET", f"/experiments/{eid}", api_key=key.key).body
        if found["status"] != "running":
            break
    # Then the experiment ended; every answer is scored, every failure spent its attempts
    assert found["status"] == "completed", found
    for variant in found["variants"]:
        assert variant["completed"] + variant["failed"] == 30 and variant["completed"] >= 24
        assert variant["scored"]["contains"] == variant["completed"]
        assert variant["scored"]["judge"] + variant["scoreErrors"]["judge"] == variant["completed"]
    left = rows("SELECT id FROM jobs WHERE experiment_id = %s AND status = 'failed' AND attempts < max_attempts", eid)
    assert left == []
    # And the budget holds nothing more, and spent what the jobs cost, once
    budget = rows("SELECT spent_usd, reserved_usd FROM key_budgets WHERE key_id = %s", key.id)[0]
    cost = rows("SELECT coalesce(sum(estimated_cost_usd), 0) AS s FROM jobs WHERE api_key_id = %s", key.id)[0]["s"]
    assert budget["reserved_usd"] == 0 and budget["spent_usd"] == cost == Decimal(found["costUSD"])
