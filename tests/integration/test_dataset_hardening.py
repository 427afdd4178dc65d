"""Datasets under a hostile client with a valid key: odd but valid input is a 422 naming the field, never a
500; an oversized file is refused before it is parsed; no error path logs a row's values."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest

from promptlab.local.runner import LocalRunner
from tests.integration.test_datasets import create, put_file
from tests.support import SetEnv, call_api


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


CANARY = f"CANARY{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # Values Postgres's jsonb refuses, in every way a row can arrive
        ({"format": "jsonl", "content": '{"input": {"q": "' + CANARY + '", "n": NaN}}\n'}, "content.lines[0]"),
        ({"format": "jsonl", "content": '{"input": {"q": "x"}, "expected": Infinity}\n'}, "content.lines[0]"),
        ({"format": "jsonl", "content": '{"input": {"q": "x"}, "expected": -Infinity}\n'}, "content.lines[0]"),
        # A 5,000-digit integer, and nesting deeper than any example needs
        ({"format": "jsonl", "content": '{"input": {"q": ' + "9" * 5_000 + "}}\n"}, "content.lines[0]"),
        ({"format": "jsonl", "content": '{"input": {"q": ' + nested(5_000) + "}}\n"}, "content.lines[0]"),
        # A CSV cell longer than the csv module's field limit (131,072 characters)
        ({"format": "csv", "content": "q,expected\n" + "x" * 140_000 + ",y\n"}, "content.rows[0]"),
    ],
)
def test_odd_but_valid_rows_are_a_422_naming_the_row(
    runner: LocalRunner, body: dict[str, Any], field: str, captured_logs: io.StringIO
) -> None:
    made = create(runner, **body)
    assert made.status == 422, made.body
    assert made.body["error"]["details"]["fields"][0]["field"].startswith(field), made.body
    assert CANARY not in captured_logs.getvalue()


def test_a_non_finite_number_in_json_rows_is_a_422_and_never_logged(
    runner: LocalRunner, captured_logs: io.StringIO
) -> None:
    raw = json.dumps(
        {"name": f"ds-{uuid.uuid4().hex[:8]}", "rows": [{"input": {"q": CANARY}, "expected": float("nan")}]}
    )
    made = call_api(runner, "POST", "/datasets", raw_body=raw)
    assert made.status == 422, made.body
    assert made.body["error"]["details"]["fields"][0]["field"] == "rows[0].expected"
    assert CANARY not in captured_logs.getvalue()


def test_deep_nesting_in_the_request_body_is_refused_without_a_500(runner: LocalRunner) -> None:
    raw = '{"name": "deep", "rows": [{"input": ' + nested(100_000) + "}]}"
    made = call_api(runner, "POST", "/datasets", raw_body=raw)
    assert made.status in {400, 413, 422}, made.body


def test_a_file_with_more_rows_than_a_dataset_holds_is_refused_as_it_is_read(
    runner: LocalRunner, set_env: SetEnv
) -> None:
    # Given a file of 60,000 rows (a dataset holds 50,000)
    upload = call_api(runner, "POST", "/datasets/uploads", body={"format": "jsonl"}).body
    put_file(upload["url"], b'{"input": {}}\n' * 60_000, "application/x-ndjson")
    # Then it is refused naming the row count, without parsing past the cap
    made = create(runner, format="jsonl", upload=upload["uploadId"])
    assert made.status == 422 and made.body["error"]["details"]["fields"][0]["field"] == "rows", made.body
    assert "50,000" in made.body["error"]["message"]


def test_a_deleted_dataset_leaves_no_rows_versions_or_experiment_copies(clean_queues: LocalRunner) -> None:
    from tests.integration.test_experiments import make_template, start
    from tests.integration.test_privacy import tables_holding
    from tests.support import drain_queues

    runner = clean_queues
    # Given a dataset at two versions, and an experiment over it (its jobs quote the rows)
    made = create(runner, rows=[{"input": {"ticket": CANARY}}])
    call_api(runner, "PUT", f"/datasets/{made.body['id']}", body={"rows": [{"input": {"ticket": CANARY + "2"}}]})
    template = make_template(runner, "{{ ticket }}")
    experiment = start(runner, {"datasetId": made.body["id"], "variants": [{"template": template["id"]}]}).body
    # When it is deleted while the experiment runs, then after it ended
    running = call_api(runner, "DELETE", f"/datasets/{made.body['id']}")
    assert running.status == 409 and running.body["error"]["details"]["experimentId"] == experiment["id"]
    drain_queues(runner)
    assert call_api(runner, "DELETE", f"/datasets/{made.body['id']}").status == 204
    # Then nothing holds its rows, and it is gone (for its tenant and any other)
    assert tables_holding(CANARY) == []
    assert call_api(runner, "GET", f"/datasets/{made.body['id']}").status == 404
    assert call_api(runner, "GET", f"/experiments/{experiment['id']}").status == 404
    assert call_api(runner, "DELETE", f"/datasets/{made.body['id']}").status == 404


def test_a_tenants_datasets_are_held_under_their_limits(runner: LocalRunner, set_env: SetEnv) -> None:
    from promptlab.tenancy import auth

    key = auth.create_key(name=f"limits-{uuid.uuid4().hex[:6]}").key
    # Given a tenant allowed 3 versions a dataset and 2,000 bytes of datasets
    set_env(PROMPTLAB_DATASET_MAX_VERSIONS="3", PROMPTLAB_DATASET_TENANT_MAX_BYTES="2000")
    rows = [{"input": {"q": "x" * 100}}]
    made = call_api(runner, "POST", "/datasets", api_key=key, body={"name": "small", "rows": rows})
    assert made.status == 201
    for _ in range(2):
        assert call_api(runner, "PUT", f"/datasets/{made.body['id']}", api_key=key, body={"rows": rows}).status == 200
    # Then a fourth version is refused, and so is a dataset past the tenant's bytes
    fourth = call_api(runner, "PUT", f"/datasets/{made.body['id']}", api_key=key, body={"rows": rows})
    assert fourth.status == 422 and "3 versions" in fourth.body["error"]["message"]
    big = call_api(runner, "POST", "/datasets", api_key=key, body={"name": "big", "rows": rows * 20})
    assert big.status == 422 and "2,000" in big.body["error"]["message"], big.body
    assert call_api(runner, "GET", "/datasets", api_key=key).body["items"][0]["version"] == 3


def test_a_huge_integer_in_the_request_body_is_refused_without_a_500(runner: LocalRunner) -> None:
    raw = '{"name": "huge", "rows": [{"input": {"q": ' + "9" * 5_000 + "}}]}"
    made = call_api(runner, "POST", "/datasets", raw_body=raw)
    assert made.status in {400, 422}, made.body
