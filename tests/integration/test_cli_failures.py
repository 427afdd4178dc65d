"""The CLI never shows a traceback: a failure is one line saying what to do, exit 1 (usage: 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptlab.core.settings import DEFAULT_DATABASE_URL
from promptlab.local.runner import RUNNER_OWNED
from promptlab.local.services import drop_database, free_port, with_database
from tests.support import ROOT, redis_prefix

_DATABASE = with_database(DEFAULT_DATABASE_URL, f"pl_cli_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module", autouse=True)
def own_database() -> Iterator[None]:
    """The commands run as a user would, on a database of their own (dropped afterwards)."""
    yield
    drop_database(_DATABASE)


def promptlab(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process with a user's environment: none of this test run's runner settings."""
    clean = {k: v for k, v in os.environ.items() if k not in RUNNER_OWNED and not k.startswith("PROMPTLAB_")}
    clean.update(DATABASE_URL=_DATABASE, PROMPTLAB_REDIS_PREFIX=redis_prefix("cli"))
    return subprocess.run(
        [sys.executable, "-m", "promptlab.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, env={**clean, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("promptlab: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_a_command_against_a_stack_that_is_not_running_says_how_to_start_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = promptlab("generate", "blog-post", "--input", "x", env={"PROMPTLAB_URL": url})
    assert result.returncode == 1
    assert one_line(result) == (
        f"promptlab: nothing answers at {url} ([Errno 111] Connection refused) — start the stack with ./dev up,"
        " or set PROMPTLAB_URL"
    )


def test_a_busy_port_is_named(busy_port: int, tmp_path: Path) -> None:
    result = promptlab("local", "--port", str(busy_port), env={"PROMPTLAB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert f"port {busy_port} is taken" in one_line(result)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("invoke", "NoSuchFunction", "-e", "events/api-health.json"), "no function 'NoSuchFunction'"),
        (("invoke", "ApiFunction", "-e", "events/missing.json"), "events/missing.json: no such file"),
    ],
)
def test_invoke_mistakes_are_one_line(args: tuple[str, ...], says: str) -> None:
    result = promptlab(*args)
    assert result.returncode == 1 and says in one_line(result)


def test_outside_the_project_it_says_where_the_template_is_missing(tmp_path: Path) -> None:
    result = promptlab("local", "--port", str(free_port()), cwd=tmp_path, env={"PROMPTLAB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1 and "no template.yaml" in one_line(result)


def test_usage_errors_exit_2_and_debug_shows_the_traceback() -> None:
    assert promptlab("generate").returncode == 2
    url = f"http://127.0.0.1:{free_port()}"
    debug = promptlab("--debug", "generate", "t", "--input", "x", env={"PROMPTLAB_URL": url})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_only_a_serving_stack_leaves_its_endpoints_and_takes_them_away(tmp_path: Path) -> None:
    state = tmp_path / "local-stack.json"
    # An invoke (a runner that serves nothing) leaves no state file behind
    invoked = promptlab(
        "invoke", "ApiFunction", "-e", "events/api-health.json", env={"PROMPTLAB_DATA_DIR": str(tmp_path)}
    )
    assert invoked.returncode == 0 and not state.exists()
    # A serving stack writes it once it serves, and removes it when it stops
    port = free_port()
    env = {**os.environ, "DATABASE_URL": _DATABASE, "PROMPTLAB_DATA_DIR": str(tmp_path)}
    env = {k: v for k, v in env.items() if k not in {"REDIS_URL", "AWS_ENDPOINT_URL", "PROMPTLAB_MODE"}}
    serving = subprocess.Popen(
        [sys.executable, "-m", "promptlab.cli", "local", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not state.exists():
            assert time.monotonic() < deadline and serving.poll() is None, "the stack did not start"
            time.sleep(0.2)
        assert json.loads(state.read_text())["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    finally:
        serving.terminate()
        serving.wait(timeout=30)
    assert not state.exists()
    # A second stack that cannot bind its port does not overwrite the running one's
    state.write_text('{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = promptlab("local", "--port", str(sock.getsockname()[1]), env={"PROMPTLAB_DATA_DIR": str(tmp_path)})
    assert busy.returncode == 1 and state.read_text() == '{"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}'


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "list"),
        ("keys", "create", "--name", "x"),
        ("usage",),
        ("dlq", "list"),
        ("dlq", "redrive"),
        ("dlq", "dismiss", "--all-without-job"),
        ("tenants", "retention", "--days", "7"),
        ("tenants", "webhook-secret"),
        ("db", "migrate"),
    ],
)
def test_a_database_that_does_not_answer_is_named_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/promptlab"
    result = promptlab(*args, env={"DATABASE_URL": dead, "PROMPTLAB_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "DATABASE_URL does not answer" in one_line(result)


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL"])
def test_local_with_an_explicit_url_that_does_not_answer_never_falls_back(variable: str, tmp_path: Path) -> None:
    dead_port = free_port()
    url = {
        "DATABASE_URL": f"postgresql://me:secret@127.0.0.1:{dead_port}/x",
        "REDIS_URL": f"redis://127.0.0.1:{dead_port}/0",
    }
    result = promptlab(
        "local", "--port", str(free_port()), env={variable: url[variable], "PROMPTLAB_DATA_DIR": str(tmp_path)}
    )
    line = one_line(result)
    assert result.returncode == 1 and f"{variable}=" in line and "does not answer" in line
    assert "secret" not in line and f":{dead_port}" in line
    assert not (tmp_path / "postgres").exists()  # no embedded server was started instead


def test_invoke_outside_the_project_says_where_the_template_is_missing(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text("{}")
    result = promptlab("invoke", "ApiFunction", "-e", str(event), cwd=tmp_path)
    assert result.returncode == 1 and "no template.yaml" in one_line(result)


@pytest.mark.parametrize(
    "args",
    [("generate", "t", "--var", "novalue"), ("local", "--port", "notaport"), ("keys",), ("invoke", "ApiFunction")],
)
def test_usage_mistakes_exit_2_without_a_traceback(args: tuple[str, ...]) -> None:
    result = promptlab(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip()
