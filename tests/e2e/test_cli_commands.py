"""The CLI's `templates` and `jobs` commands against `promptlab local`, as a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.local_stack import KEYS

pytestmark = pytest.mark.e2e


def promptlab(base: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTLAB_URL": base, "PROMPTLAB_API_KEY": KEYS[base]}
    return subprocess.run([sys.executable, "-m", "promptlab.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_templates_from_creation_to_a_protected_label(local_stack: str, tmp_path: Path) -> None:
    name = f"reply-{uuid.uuid4().hex[:6]}"
    made = promptlab(local_stack, "templates", "create", name, "--body", "Answer {{ ticket }} politely.",
                     "--provider", "fake")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "version 1 · variables ticket" in made.stdout
    (tmp_path / "v2.txt").write_text("Answer {{ ticket }} in one sentence.")
    second = promptlab(local_stack, "templates", "version", name, "--body-file", str(tmp_path / "v2.txt"))
    assert second.returncode == 0 and "version 2" in second.stdout, second.stderr
    labelled = promptlab(local_stack, "templates", "label", name, "production", "2", "--protect")
    assert labelled.returncode == 0 and "@production → version 2 (protected)" in labelled.stdout, labelled.stderr
    shown = promptlab(local_stack, "templates", "show", f"{name}@production")
    assert "version 2" in shown.stdout and "in one sentence" in shown.stdout
    assert name in promptlab(local_stack, "templates", "list", "--q", name).stdout
    # The version kept the template's defaults (the fake provider)
    generated = promptlab(local_stack, "generate", f"{name}@production", "--input", "my invoice", "--wait")
    assert generated.returncode == 0 and "fake/" in generated.stderr, generated.stderr


def test_jobs_list_show_cancel_and_retry(local_stack: str) -> None:
    name = f"jobs-{uuid.uuid4().hex[:6]}"
    assert promptlab(local_stack, "templates", "create", name, "--body", "Say {{ x }}").returncode == 0
    job_id = promptlab(local_stack, "generate", name, "--input", "hello").stdout.strip()
    assert job_id.startswith("job_")
    listed = promptlab(local_stack, "jobs", "list", "--template", name)
    assert job_id in listed.stdout, listed.stderr
    shown = promptlab(local_stack, "jobs", "show", job_id, "--json")
    assert shown.returncode == 0 and f'"id": "{job_id}"' in shown.stdout
    cancelled = promptlab(local_stack, "jobs", "cancel", job_id)
    if cancelled.returncode == 0:  # it may have completed already
        assert "cancelled" in cancelled.stdout
        retried = promptlab(local_stack, "jobs", "retry", job_id)
        assert retried.returncode == 0 and "queued" in retried.stdout, retried.stderr
    else:
        assert "409" in cancelled.stderr or "already" in cancelled.stderr
    missing = promptlab(local_stack, "jobs", "show", "job_nope")
    assert missing.returncode == 1 and "404" in missing.stderr
