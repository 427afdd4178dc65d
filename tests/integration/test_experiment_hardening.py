"""Experiments under a hostile client with a valid key: judges cannot flood the queue, purges take every
copy, exports cannot carry spreadsheet formulas."""

from __future__ import annotations

from typing import Any

from promptlab.local.runner import LocalRunner
from tests.integration.test_experiments import JUDGE, make_dataset, make_template, start
from tests.support import SetEnv, make_poller, rows


def queued_for(experiment_id: str) -> int:
    """The experiment's jobs (its judges' too) sent to the queue and not ended."""
    return int(
        rows(
            "SELECT count(*) AS n FROM jobs WHERE experiment_id = %s AND enqueued_at IS NOT NULL"
            " AND status IN ('queued', 'processing')",
            experiment_id,
        )[0]["n"]
    )


def test_judges_wait_in_the_experiments_window_instead_of_flooding_the_queue(
    clean_queues: LocalRunner, set_env: SetEnv
) -> None:
    runner = clean_queues
    # Given a window of 8, 12 rows, and 5 judges for every answer
    set_env(PROMPTLAB_EXPERIMENT_WINDOW="8")
    template = make_template(runner, "Label: {{ ticket }}")
    judges = [make_template(runner, JUDGE) for _ in range(5)]
    dataset = make_dataset(runner, 12)
    body = {
        "datasetId": dataset["id"], "variants": [{"template": template["id"]}], "cache": False,
        "scorers": [{"type": "judge", "template": j["id"], "name": f"judge{n}"} for n, j in enumerate(judges)],
    }  # fmt: skip
    started = start(runner, body)
    assert started.status == 201, started.body
    eid = started.body["id"]
    # When the worker takes one message at a time until the experiment ends
    assert runner.stack is not None
    poller = make_poller(runner, next(m for m in runner.stack.mappings if m.queue_logical_id == "JobQueueNormal"))
    most = 0
    for _ in range(400):
        most = max(most, queued_for(eid))
        if not poller.poll_once(wait_seconds=0):
            found: dict[str, Any] = rows("SELECT status FROM experiments WHERE id = %s", eid)[0]
            if found["status"] != "running":
                break
    # Then at no moment were more of its jobs and judges on the queue than its window
    assert most <= 8
    jobs = rows("SELECT count(*) AS n, count(experiment_scorer) AS judged FROM jobs WHERE experiment_id = %s", eid)
    assert jobs == [{"n": 12 * 6, "judged": 12 * 5}]
    assert rows("SELECT status FROM experiments WHERE id = %s", eid)[0]["status"] == "completed"


def test_judges_count_against_the_experiments_job_cap(runner: LocalRunner) -> None:
    # Given 2 variants × 1,000 rows (2,000 jobs, under the 20,000 cap) and 10 judges for every answer
    template = make_template(runner, "Label: {{ ticket }}")
    judge = make_template(runner, JUDGE)
    dataset = make_dataset(runner, 1_000)
    body = {
        "datasetId": dataset["id"], "variants": [{"template": template["id"]}] * 2,
        "scorers": [{"type": "judge", "template": judge["id"], "name": f"j{n}"} for n in range(10)],
    }  # fmt: skip
    # Then the 22,000 jobs it would make are refused, naming `sample`
    refused = start(runner, body)
    assert refused.status == 422, refused.body
    assert refused.body["error"]["details"]["fields"][0]["field"] == "sample"
    assert "10 judges" in refused.body["error"]["message"]


def test_purging_an_experiments_answer_purges_its_judges_copies(clean_queues: LocalRunner) -> None:
    import uuid

    from tests.integration.test_privacy import redis_keys_holding, tables_holding
    from tests.support import call_api, drain_queues

    runner = clean_queues
    # Given an experiment with a judge over a row whose input is a canary (quoted by the answer and the judge)
    canary = f"CANARY{uuid.uuid4().hex}"
    template = make_template(runner, "{{ ticket }}")
    judge = make_template(runner, JUDGE)
    dataset = call_api(
        runner, "POST", "/datasets", body={"name": f"ds-{canary[-8:]}", "rows": [{"input": {"ticket": canary}}]}
    ).body
    body = {"datasetId": dataset["id"], "variants": [{"template": template["id"]}], "cache": False,
            "scorers": [{"type": "judge", "template": judge["id"]}]}  # fmt: skip
    eid = start(runner, body).body["id"]
    for _ in range(4):
        drain_queues(runner)
    answer = rows("SELECT id FROM jobs WHERE experiment_id = %s AND experiment_scorer IS NULL", eid)[0]["id"]
    judged = rows("SELECT input FROM jobs WHERE experiment_id = %s AND experiment_scorer IS NOT NULL", eid)
    assert canary in str(judged)
    # When the answer's job is deleted
    assert call_api(runner, "DELETE", f"/jobs/{answer}").status == 204
    # Then only the dataset (which the experiment ran over, and which is deleted on its own) holds the canary
    assert tables_holding(canary) == ["dataset_rows"]
    assert redis_keys_holding(canary) == []


def test_a_csv_export_never_hands_a_spreadsheet_a_formula(clean_queues: LocalRunner) -> None:
    import csv
    import io

    from tests.support import call_api, drain_queues

    runner = clean_queues
    # Given rows whose expected answers and model outputs start like spreadsheet formulas
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    template = make_template(runner, "{{ ticket }}")  # the fake model's answer starts with its prompt…
    dataset = call_api(
        runner, "POST", "/datasets",
        body={"name": f"ds-{id(hostile)}", "rows": [{"input": {"ticket": h}, "expected": h} for h in hostile]},
    ).body  # fmt: skip
    eid = start(runner, {"datasetId": dataset["id"], "variants": [{"template": template["id"]}]}).body["id"]
    drain_queues(runner)
    # When the results are downloaded as CSV
    text = call_api(runner, "GET", f"/experiments/{eid}/results", query={"format": "csv"}).body
    cells = [cell for line in list(csv.reader(io.StringIO(text, newline="")))[1:] for cell in line]
    # Then no cell starts as a formula would; the hostile ones are shown with a leading quote
    assert not [c for c in cells if c[:1] in {"=", "+", "-", "@", "\t", "\r"}]
    assert {"'" + h for h in hostile} <= set(cells)


def test_no_experiment_or_dataset_error_path_logs_a_rows_values(
    clean_queues: LocalRunner, set_env: SetEnv, captured_logs: Any
) -> None:
    import uuid

    from tests.support import call_api, drain_queues

    runner = clean_queues
    buffer = captured_logs
    canary = f"CANARY{uuid.uuid4().hex}"
    set_env(PROMPTLAB_RETRY_BACKOFF_SECONDS="[0]", PROMPTLAB_THROTTLE="false")
    # Given rows holding a canary: one a variant cannot render, others whose calls fail or are judged
    bad = call_api(runner, "POST", "/datasets", body={"name": canary[-10:], "rows": [{"input": {"other": canary}}]})
    template = make_template(runner, "Label: {{ ticket }}")
    refused = start(runner, {"datasetId": bad.body["id"], "variants": [{"template": template["id"]}]})
    assert refused.status == 422
    good = call_api(
        runner, "POST", "/datasets",
        body={"name": canary[-12:],
              "rows": [{"input": {"ticket": f"{canary} {n}"}, "expected": canary} for n in range(3)]},
    ).body  # fmt: skip
    judge = make_template(runner, JUDGE)
    for model in ("status-400", "status-529", "fake-1"):
        body = {"datasetId": good["id"], "variants": [{"template": template["id"], "model": model}],
                "scorers": [{"type": "judge", "template": judge["id"]}], "cache": False}  # fmt: skip
        start(runner, body)
    for _ in range(4):
        drain_queues(runner)
        drain_queues(runner, function="DlqFunction")
    call_api(runner, "GET", "/experiments", query={"limit": "5"})
    # Then no log line holds the canary
    assert buffer.getvalue().count("\n") > 3
    assert canary not in buffer.getvalue()


def test_ignore_case_is_honoured_as_the_api_takes_it(clean_queues: LocalRunner) -> None:
    from tests.support import call_api, drain_queues

    runner = clean_queues
    # Given a row expecting "hello" and a template whose answer quotes it in capitals
    template = make_template(runner, "{{ ticket }}")
    dataset = call_api(
        runner, "POST", "/datasets", body={"name": f"case-{id(runner)}-{template['id'][-6:]}",
                                           "rows": [{"input": {"ticket": "HELLO"}, "expected": "hello"}]},
    ).body  # fmt: skip
    scorer_list = [
        {"type": "contains", "name": "folded"},
        {"type": "contains", "name": "strict", "ignoreCase": False},
        {"type": "exact", "name": "exact_folded", "ignoreCase": True},
    ]
    eid = start(runner, {"datasetId": dataset["id"], "variants": [{"template": template["id"]}],
                         "scorers": scorer_list}).body["id"]  # fmt: skip
    drain_queues(runner)
    found = call_api(runner, "GET", f"/experiments/{eid}").body
    # Then `contains` folds case unless told not to, and `exact` folds it when told to
    scores = found["variants"][0]["scores"]
    assert scores["folded"] == 1 and scores["strict"] == 0, found
    output = rows("SELECT output FROM jobs WHERE experiment_id = %s", eid)[0]["output"]
    assert scores["exact_folded"] == (1 if output.strip().casefold() == "hello" else 0)
