"""The README's walk-through, pasted as a user would: its bash blocks run in order, as one script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.local_stack import KEYS

pytestmark = pytest.mark.e2e


def walk_through() -> str:
    """The bash blocks of the README's Walk-through section, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Walk-through", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 6, "the walk-through lost its blocks"
    return "\n".join(blocks)


def test_the_walk_through_runs_as_written(local_stack: str, tmp_path: Path) -> None:
    if not (shutil.which("jq") and shutil.which("curl")):
        if os.environ.get("CI"):
            pytest.fail("the walk-through needs curl and jq (Debian: apt-get install jq curl)")
        pytest.skip("no curl or jq here")
    script = walk_through()
    assert script.startswith("API=http://127.0.0.1:3000\n")
    script = script.replace("API=http://127.0.0.1:3000\n", f"API={local_stack}\n", 1)
    home = tmp_path / "home"
    (home / ".promptlab").mkdir(parents=True)
    (home / ".promptlab" / "dev-api-key").write_text(KEYS[local_stack] + "\n")  # where `./dev up` keeps it
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"], "HOME": str(home)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    template_id, job_id = lines[0], lines[1]
    assert template_id.startswith("tpl_") and job_id.startswith("job_")
    # Each `# →` line of the README is what the command printed (ids and running totals aside)
    assert json.loads(lines[2]) == {
        "status": "completed", "inputTokens": 17, "outputTokens": 223, "estimatedCostUSD": "0.001132", "attempts": 1
    }  # fmt: skip
    items = [json.loads(line) for line in lines[3:6]]
    assert [(i["status"], i["error"]) for i in items] == [("queued", None), ("queued", None), (None, "not_found")]
    assert json.loads(lines[6]) == [{"label": "production", "version": 1}]
    assert json.loads(lines[7]) == {"status": "completed", "cacheHit": True}
    totals = json.loads(lines[8])
    assert totals["requests"] == 4 and totals["cacheHits"] == 1 and totals["savedUSD"] == "0.001132"
    assert totals["costUSD"].startswith("0.00")


def test_the_python_client_example_runs_as_written(local_stack: str) -> None:
    import sys

    section = (ROOT / "docs" / "guides" / "python-client.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    env = {**os.environ, "PROMPTLAB_URL": local_stack, "PROMPTLAB_API_KEY": KEYS[local_stack]}
    ran = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("completed ") and lines[1] == "['completed', 'completed', 'completed']"
    assert lines[2].startswith("validation_error [('input.topic'") or lines[2].startswith("validation_error [("), lines


def test_the_experiments_example_runs_from_the_examples_folder(local_stack: str, tmp_path: Path) -> None:
    import shutil as shell_tools
    import sys

    section = (ROOT / "docs" / "guides" / "experiments.md").read_text(encoding="utf-8")
    script = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[0]
    shell_tools.copytree(ROOT / "examples", tmp_path / "examples")
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "PROMPTLAB_URL": local_stack, "PROMPTLAB_API_KEY": KEYS[local_stack]}  # fmt: skip
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "200 rows · fields ticket" in done.stdout and "contains=1.000" in done.stdout
    assert "score (contains) +1.000" in done.stdout and (tmp_path / "examples" / "results.csv").exists()


def test_the_integrations_example_submits_a_job_over_sqs(tmp_path: Path) -> None:
    import sys
    import time

    from tests.support.local_stack import request, running_stack

    section = (ROOT / "docs" / "guides" / "integrations.md").read_text(encoding="utf-8")
    example = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[0]
    (tmp_path / "data").mkdir()
    with running_stack(tmp_path / "data") as base:
        state = json.loads((tmp_path / "data" / "local-stack.json").read_text())
        status, _, made = request(base, "POST", "/templates", {"name": "intake-example", "body": "{{ input }}"})
        assert status == 201, made
        env = {**os.environ, "PROMPTLAB_SQS_URL": state["AWS_ENDPOINT_URL"], "PROMPTLAB_API_KEY": KEYS[base],
               "TEMPLATE_ID": made["id"], "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}  # fmt: skip
        ran = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        deadline = time.monotonic() + 30
        while True:  # the intake function makes the message a job of the key's tenant
            jobs = request(base, "GET", "/jobs")[2]["items"]
            if any(j["templateId"] == made["id"] for j in jobs):
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.5)
