"""PromptLab's OpenAI door beside the LiteLLM proxy, in one run (`./dev bench litellm`; figures, not tests).

The same official `openai` client calls both `POST /v1/chat/completions`; both call the same fake
OpenAI-compatible upstream (answering at once); rounds interleave the two so machine noise hits both alike.
Needs a LiteLLM install: `LITELLM_VENV=/path/to/venv` (`pip install 'litellm[proxy]==1.108.7'`). Reported:
- cache hit p50/p99: the same request repeated (PromptLab: the result cache; LiteLLM: its Redis cache);
- miss: a new request until its answer is in hand, and its overhead over the upstream alone (same client).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_SCRIPT = """
import json, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        req = json.loads(raw or b"{}")
        body = json.dumps({"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion",
            "created": int(time.time()), "model": req.get("model", "fake-gpt"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hello! This is a fake reply."}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
LITELLM_CONFIG = """model_list:
  - model_name: fake-gpt
    litellm_params:
      model: openai/fake-gpt
      api_base: http://127.0.0.1:{upstream}/v1
      api_key: x
litellm_settings:
  cache: true
  cache_params:
    type: redis
    host: 127.0.0.1
    port: {redis}
general_settings:
  master_key: sk-bench-3f9d2c71b8e64a05a1c7d9e2f4b6a813
"""
LITELLM_KEY = "sk-bench-3f9d2c71b8e64a05a1c7d9e2f4b6a813"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return bool(answer.status == 200)


def wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{what} did not start")


@contextmanager
def processes(work: Path, litellm_venv: Path) -> Iterator[dict[str, Any]]:
    ports = {name: free_port() for name in ("upstream", "redis", "litellm", "promptlab")}
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (work / f"{name}.log").open("w")
        started.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT))

    (work / "upstream.py").write_text(UPSTREAM_SCRIPT)
    (work / "litellm.yaml").write_text(LITELLM_CONFIG.format(upstream=ports["upstream"], redis=ports["redis"]))
    start("redis", ["redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no"])  # fmt: skip
    start("upstream", [sys.executable, str(work / "upstream.py"), str(ports["upstream"])])
    start("litellm", [str(litellm_venv / "bin" / "litellm"), "--config", str(work / "litellm.yaml"), "--port",
                      str(ports["litellm"])], {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})  # fmt: skip
    database = f"promptlab_litellm_bench_{uuid.uuid4().hex[:8]}"
    base_db = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/promptlab").rsplit("/", 1)[0]
    env = {
        **os.environ, "DATABASE_URL": f"{base_db}/{database}", "PROMPTLAB_DATA_DIR": str(work / "promptlab"),
        "PROMPTLAB_REDIS_PREFIX": f"bench-litellm:{uuid.uuid4().hex[:6]}:",
        "OPENAI_API_KEY": "x", "OPENAI_BASE_URL": f"http://127.0.0.1:{ports['upstream']}/v1",
        "PROMPTLAB_RATE_LIMIT_GENERATE": "0", "PROMPTLAB_RATE_LIMIT_READS": "0", "POWERTOOLS_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    start("promptlab", [sys.executable, "-m", "promptlab.cli", "local", "--port", str(ports["promptlab"]),
                        "--http-workers", "2"], env)  # fmt: skip
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{ports['promptlab']}/health"), 90, "promptlab local")
        wait_until(lambda: answers(f"http://127.0.0.1:{ports['litellm']}/health/liveliness"), 120, "LiteLLM")
        key = (work / "promptlab" / "dev-api-key").read_text().strip()
        yield {**ports, "promptlab_key": key, "started": started}
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run(["psql", "-q", f"{base_db}/postgres", "-c", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"],
                       capture_output=True, check=False)  # fmt: skip


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = (len(ordered) - 1) * p / 100
    f = int(k)
    g = min(f + 1, len(ordered) - 1)
    return round(ordered[f] + (ordered[g] - ordered[f]) * (k - f), 2)


def timed(action: Callable[[], None], count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> int:
    venv = os.environ.get("LITELLM_VENV")
    if not venv or not (Path(venv) / "bin" / "litellm").exists():
        raise SystemExit("set LITELLM_VENV to a venv with `pip install 'litellm[proxy]==1.108.7'`")
    if not shutil.which("redis-server"):
        raise SystemExit("needs redis-server on PATH")
    rounds = int(os.environ.get("ROUNDS", "3"))
    work = Path(tempfile.mkdtemp(prefix="promptlab-litellm-"))
    with processes(work, Path(venv)) as ports:
        ours = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['promptlab']}/v1", api_key=ports["promptlab_key"],
                             max_retries=0)  # fmt: skip
        theirs = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['litellm']}/v1", api_key=LITELLM_KEY, max_retries=0)
        upstream = openai.OpenAI(base_url=f"http://127.0.0.1:{ports['upstream']}/v1", api_key="x", max_retries=0)
        hit = [{"role": "user", "content": "benchmark cache hit: what is 2+2?"}]

        def call(client: openai.OpenAI, model: str, messages: Any) -> None:
            answer = client.chat.completions.create(model=model, messages=messages)
            assert answer.choices[0].message.content

        def fresh() -> Any:
            return [{"role": "user", "content": f"miss {uuid.uuid4()}"}]

        for _ in range(20):  # warm both up and fill both caches
            call(ours, "openai/fake-gpt", hit)
            call(theirs, "fake-gpt", hit)
        samples: dict[str, list[float]] = {k: [] for k in ("pl_hit", "ll_hit", "pl_miss", "ll_miss", "up_miss")}
        for _ in range(rounds):
            samples["pl_hit"] += timed(lambda: call(ours, "openai/fake-gpt", hit), 300)
            samples["ll_hit"] += timed(lambda: call(theirs, "fake-gpt", hit), 300)
            samples["up_miss"] += timed(lambda: call(upstream, "fake-gpt", fresh()), 100)
            samples["pl_miss"] += timed(lambda: call(ours, "openai/fake-gpt", fresh()), 60)
            samples["ll_miss"] += timed(lambda: call(theirs, "fake-gpt", fresh()), 60)
    summary: dict[str, Any] = {
        name: {"n": len(values), "p50_ms": pct(values, 50), "p99_ms": pct(values, 99)}
        for name, values in samples.items()
    }
    up = summary["up_miss"]["p50_ms"]
    summary["ratios"] = {
        "hit_p50_litellm_over_promptlab": round(summary["ll_hit"]["p50_ms"] / summary["pl_hit"]["p50_ms"], 2),
        "hit_p99_litellm_over_promptlab": round(summary["ll_hit"]["p99_ms"] / summary["pl_hit"]["p99_ms"], 2),
        "miss_overhead_ms_promptlab": round(summary["pl_miss"]["p50_ms"] - up, 2),
        "miss_overhead_ms_litellm": round(summary["ll_miss"]["p50_ms"] - up, 2),
        "miss_p50_spread_ms": round(statistics.pstdev(samples["pl_miss"]), 2),
    }
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
