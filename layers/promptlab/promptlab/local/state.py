"""The running stack's endpoints, left in the data folder so `promptlab dlq …` in another shell can find them.

`local-stack.json` describes the latest stack started; each stack also keeps `local-stack-<port>.json`. A
stack that stops removes its own file, and where `local-stack.json` was its own, another running stack's
takes its place: stacks on other ports never lose theirs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LATEST = "local-stack.json"


def latest(data_dir: Path) -> Path:
    return data_dir / LATEST


def own(data_dir: Path, port: int) -> Path:
    return data_dir / f"local-stack-{port}.json"


def write(data_dir: Path, *, port: int, url: str) -> None:
    """Record this stack's endpoints (from its environment) as its own and as the latest."""
    keys = ["DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    keys += [k for k in os.environ if k.endswith("_URL") and k.startswith(("JOB_", "INTAKE_"))]
    endpoints = {key: os.environ[key] for key in keys if key in os.environ}
    endpoints["PROMPTLAB_URL"] = url
    data_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(endpoints, indent=2)
    own(data_dir, port).write_text(text)
    latest(data_dir).write_text(text)


def forget(data_dir: Path, *, port: int) -> None:
    """Drop this stack's file; if the latest was this stack, the newest other running stack becomes it."""
    mine_file = own(data_dir, port)
    mine = mine_file.read_text() if mine_file.exists() else None
    mine_file.unlink(missing_ok=True)
    current = latest(data_dir)
    if mine is None or not current.exists() or current.read_text() != mine:
        return
    others = sorted(data_dir.glob("local-stack-*.json"), key=lambda f: f.stat().st_mtime)
    if others:
        current.write_text(others[-1].read_text())
    else:
        current.unlink(missing_ok=True)
