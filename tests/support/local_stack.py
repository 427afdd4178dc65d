"""`promptlab local` as a subprocess, and HTTP calls to it with its development key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from promptlab.local.services import drop_database, free_port, postgres_answers, stop_process, with_database
from tests.support import ROOT, redis_prefix

# The development key each running stack printed, by base URL.
KEYS: dict[str, str] = {}


def dev_key(data_dir: Path) -> str:
    """The key a runner keeps in its data folder (the one it prints at start)."""
    return (data_dir / "dev-api-key").read_text().strip()


def request(
    base: str, method: str, path: str, body: Any = None, *, key: str | None = "", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One HTTP call with the stack's key (`key=None`: none; or another key)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    chosen = KEYS.get(base) if key == "" else key
    if chosen:
        req.add_header("Authorization", f"Bearer {chosen}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            text = answer.read()
            return answer.status, dict(answer.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


@contextmanager
def running_stack(data_dir: Path, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> Iterator[str]:
    """`promptlab local --http-workers 2` on a free port with its own database; yields the base URL."""
    port = free_port()
    base_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/promptlab")
    # A user's environment: not the endpoints an in-process runner of this test session put there
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in {"AWS_ENDPOINT_URL", "PROMPTLAB_MODE"} and not (k.endswith("_URL") and "QUEUE" in k or "DLQ" in k)
    }
    env = {
        **inherited,
        "DATABASE_URL": with_database(base_url, f"promptlab_e2e_{uuid.uuid4().hex[:10]}"),
        "PROMPTLAB_DATA_DIR": str(data_dir),
        "PROMPTLAB_REDIS_PREFIX": redis_prefix("e2e"),
        **(extra_env or {}),
    }
    log = data_dir / "local.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            # Two processes serve HTTP on the port, as `--http-workers 2` does for users.
            [sys.executable, "-m", "promptlab.cli", "local", "--port", str(port), "--http-workers", "2", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(base, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("promptlab local did not start:\n" + log.read_text())
            time.sleep(0.2)
        KEYS[base] = dev_key(data_dir)
        yield base
    finally:
        stop_process(process)
        # An embedded server went away with the runner and its temporary data folder.
        if postgres_answers(env["DATABASE_URL"]):
            drop_database(env["DATABASE_URL"])
