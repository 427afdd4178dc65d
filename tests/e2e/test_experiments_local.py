"""Experiments end to end through `promptlab local`: a 200-row JSONL dataset, two versions of a template with the
`contains` and `judge` scorers, the comparison, promotion to `production` and the joined results — by the CLI
(as a user runs it) and by the API."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, unique
from tests.support.local_stack import KEYS, request

pytestmark = pytest.mark.e2e

EARLY = "Label: {{ ticket }}"
LATE = "Read the customer's message below with care and then give it a label. Message: {{ ticket }}"
JUDGE = "Input: {{ input }}\nExpected: {{ expected }}\nAnswer: {{ output }}\nScore the answer from 0 to 1."


def cli(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`promptlab …` as a user runs it against the stack."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PROMPTLAB_API_KEY": KEYS[base]}
    return subprocess.run(
        [sys.executable, "-m", "promptlab.cli", *args, "--url", base],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    status, _, answer = request(base, method, path, body)
    assert status < 300, (method, path, status, answer)
    return answer


def two_versions_and_a_judge(base: str) -> tuple[str, str]:
    template = api(base, "POST", "/templates", {"name": unique("tickets"), "body": LATE})
    api(base, "PUT", f"/templates/{template['id']}", {"name": template["name"], "body": EARLY})
    judge = api(base, "POST", "/templates", {"name": unique("judge"), "body": JUDGE})
    return template["id"], judge["id"]


def write_dataset(path: Path, rows: int) -> Path:
    lines = [json.dumps({"input": {"ticket": f"refund{i} now"}, "expected": f"refund{i}"}) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_upload_run_compare_promote_and_download_by_cli(local_stack: str, tmp_path: Path) -> None:
    base = local_stack
    template_id, judge_id = two_versions_and_a_judge(base)
    data = write_dataset(tmp_path / "tickets.jsonl", 200)

    uploaded = cli(base, "datasets", "upload", str(data), "--name", unique("tickets"))
    assert uploaded.returncode == 0, uploaded.stderr
    dataset_id = uploaded.stdout.split()[0]
    assert dataset_id.startswith("ds_") and "200 rows" in uploaded.stdout

    ran = cli(
        base, "experiments", "run", "--dataset", dataset_id, "--variant", f"{template_id}@1",
        "--variant", f"{template_id}@2,maxTokens=200", "--scorer", "contains", "--scorer", f"judge={judge_id}",
        "--every", "0.5",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    experiment_id = ran.stderr.split()[0]
    assert f"{experiment_id} completed · 200 rows" in ran.stdout
    assert "contains=0.000" in ran.stdout and "contains=1.000" in ran.stdout, ran.stdout

    compared = cli(base, "experiments", "compare", experiment_id, "--scorer", "contains")
    assert compared.returncode == 0, compared.stderr
    assert "score (contains) +1.000 (95 % CI +1.000 … +1.000) · 200 better, 0 worse" in compared.stdout
    averaged = cli(base, "experiments", "compare", experiment_id)  # no --scorer: it says what it averaged
    assert averaged.returncode == 0 and "score (mean of contains" in averaged.stdout, averaged.stdout

    promoted = cli(base, "experiments", "promote", experiment_id, "--variant", "1")
    assert promoted.returncode == 0 and f"{template_id}@production → version 2 (new)" in promoted.stdout
    labels = api(base, "GET", f"/templates/{template_id}/labels")
    assert labels["labels"][0]["version"] == 2 and labels["moves"][0]["experimentId"] == experiment_id

    out = tmp_path / "out.csv"
    downloaded = cli(base, "experiments", "results", experiment_id, "-o", str(out))
    assert downloaded.returncode == 0, downloaded.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 200 and {r["v1_contains"] for r in table} == {"1.0"} and all(r["v0_judge"] for r in table)


def test_the_same_by_api(local_stack: str) -> None:
    base = local_stack
    template_id, judge_id = two_versions_and_a_judge(base)
    lines = "\n".join(json.dumps({"input": {"ticket": f"refund{i} now"}, "expected": f"refund{i}"}) for i in range(200))
    dataset = api(base, "POST", "/datasets", {"name": unique("api"), "format": "jsonl", "content": lines})
    started = api(
        base, "POST", "/experiments",
        {"datasetId": dataset["id"], "variants": [{"template": f"{template_id}@1"}, {"template": f"{template_id}@2"}],
         "scorers": [{"type": "contains"}, {"type": "judge", "template": judge_id}]},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    found = started
    while found["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        found = api(base, "GET", f"/experiments/{started['id']}")
    assert found["status"] == "completed", found
    assert [v["scores"]["contains"] for v in found["variants"]] == [0.0, 1.0]
    assert all(v["scored"]["judge"] == 200 for v in found["variants"])
    compared = api(base, "GET", f"/experiments/{started['id']}/compare?a=0&b=1")
    assert compared["pairedRows"] == 200 and compared["wins"] == 200
    promoted = api(base, "POST", f"/experiments/{started['id']}/promote", {"variant": 1})
    assert promoted["version"] == 2
    download = urllib.request.Request(f"{base}/experiments/{started['id']}/results?format=csv")
    download.add_header("Authorization", f"Bearer {KEYS[base]}")
    with urllib.request.urlopen(download, timeout=30) as answer:
        table = list(csv.DictReader(io.StringIO(answer.read().decode())))
    assert len(table) == 200 and table[0]["v1_contains"] == "1.0" and table[0]["v0_judge"] != ""


def test_a_file_over_a_request_body_uploads_by_cli_through_a_presigned_url(local_stack: str, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_text("ticket,expected\n" + "".join(f"ticket number {i} {'x' * 40},label{i % 7}\n" for i in range(20_000)))
    assert big.stat().st_size > 1_000_000  # the local gateway refuses a body this large
    uploaded = cli(local_stack, "datasets", "upload", str(big), "--name", unique("big"))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "20,000 rows" in uploaded.stdout and "fields ticket" in uploaded.stdout
