"""Latency and throughput of the hot paths, on the machine it runs on (see README, Performance).

Runs the stack from template.yaml in this process against the configured (or embedded) Postgres and
Redis and moto's SQS, with rate limits raised so they count but never refuse.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


def timed(action: Callable[[], Any], count: int) -> dict[str, float]:
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        action()
        samples.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    return {**percentiles(samples), "per_s": round(count / elapsed)}


def cold_import_ms(runs: int = 5) -> dict[str, float]:
    code = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    values = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT / "functions" / "api", capture_output=True, text=True, check=True
        )
        values.append(float(out.stdout.strip()))
    return {"median_ms": round(statistics.median(values), 1), "min_ms": round(min(values), 1)}


def built_cold_imports() -> dict[str, float] | str:
    """Every function's cold import from the built artifact (`./dev sam`), in a bare interpreter with boto3."""
    from tools.check_build import cold_imports

    build = Path(tempfile.gettempdir()) / "promptlab-sam-build"
    if not (build / "ApiFunction").is_dir():
        return "no build: run ./dev sam first"
    return cold_imports(build)


def machine_speed() -> dict[str, float]:
    """How fast this machine runs plain Python today (the same machine kind varies by 2-3× from day to day)."""
    import timeit

    best = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000
    return {"python_sum_range_1000_us": round(best * 1e6, 2)}


def api_event(runner: Any, method: str, path: str, body: Any = None) -> dict[str, Any]:
    from promptlab.local.gateway import proxy_event

    found = runner.stack.route_for(method, path)
    route, params = found
    raw = json.dumps(body).encode() if body is not None else b""
    headers = [("Content-Type", "application/json"), ("Host", "127.0.0.1")]
    if runner.dev_key:
        headers.append(("Authorization", f"Bearer {runner.dev_key}"))
    return proxy_event(
        route=route, path_params=params, method=method, raw_path=path, headers=headers, body=raw, source_ip="127.0.0.9"
    )


def http_load(port: int, body: bytes, *, key: str | None, connections: int, per_connection: int) -> dict[str, float]:
    samples: list[float] = []
    lock = threading.Lock()
    statuses: dict[int, int] = {}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(per_connection):
            begin = time.perf_counter()
            conn.request("POST", "/generate", body=body, headers=auth_headers(key))
            answer = conn.getresponse()
            answer.read()
            mine.append(time.perf_counter() - begin)
            with lock:
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
        conn.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {**percentiles(samples), "per_s": round(len(samples) / elapsed), "statuses": statuses}  # type: ignore[dict-item]


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}


def wrk_load(port: int, body: bytes, *, key: str | None, connections: int, seconds: int) -> dict[str, Any] | None:
    """The same load from `wrk` (a C load generator, so the client does not share our GIL), if installed."""
    if shutil.which("wrk") is None:
        return None
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in auth_headers(key).items())
        + f"wrk.body = {json.dumps(body.decode())}\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/generate"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures: dict[str, Any] = {"connections": connections}
    for line in out.splitlines():
        parts = line.split()
        if line.strip().startswith(("50%", "99%")):
            figures[f"p{parts[0].rstrip('%')}"] = parts[1]
        elif line.startswith("Requests/sec:"):
            figures["per_s"] = round(float(parts[1]))
        elif "Non-2xx" in line:
            figures["non_2xx"] = int(parts[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--http-workers", type=int, default=2, help="runner processes serving HTTP")
    args = parser.parse_args()
    os.environ.update(
        PROMPTLAB_RATE_LIMIT_GENERATE="100000000",
        PROMPTLAB_RATE_LIMIT_READS="100000000",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    from promptlab.infra.request_limits import get_limiter
    from promptlab.local.pollers import SqsPoller
    from promptlab.local.runner import LocalRunner
    from promptlab.local.services import drop_database, free_port

    figures: dict[str, Any] = {
        "machine": machine_speed(),
        "cold_import_api_function": cold_import_ms(),
        "cold_import_built_ms": built_cold_imports(),
        "http_workers": args.http_workers,
    }
    runner = LocalRunner(
        template=ROOT / "template.yaml",
        port=free_port(),
        run_pollers=False,
        database_name=f"promptlab_bench_{uuid.uuid4().hex[:8]}",
        http_workers=args.http_workers,
    )
    runner.start()
    try:
        assert runner.stack is not None
        limiter = get_limiter()
        key = f"bench:{{rl}}:{uuid.uuid4().hex}"
        figures["rate_limiter_alone"] = timed(
            lambda: limiter.admit({key: 100_000_000}, window_seconds=60), args.requests
        )

        def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
            answer: dict[str, Any] = runner.invoke("ApiFunction", api_event(runner, method, path, body))
            return answer

        template = json.loads(
            call("POST", "/templates", {"name": uuid.uuid4().hex, "body": "Explain {{ x }}."})["body"]
        )
        body = {"templateId": template["id"], "input": "SQS"}
        assert call("POST", "/generate", body)["statusCode"] == 202
        for mapping in runner.stack.mappings:
            if mapping.function == "WorkerFunction":
                SqsPoller(
                    mapping=mapping, sqs=runner.sqs_client(), invoke=runner.invoke,
                    region=runner.stack.region, stop=threading.Event(), index=0,
                ).poll_once(wait_seconds=1)  # fmt: skip
        hit_event = api_event(runner, "POST", "/generate", body)
        first = runner.invoke("ApiFunction", hit_event)
        assert first["statusCode"] == 200, first
        figures["cache_hit_in_process"] = timed(lambda: runner.invoke("ApiFunction", hit_event), args.requests)

        def miss() -> None:
            event = api_event(runner, "POST", "/generate", {**body, "input": uuid.uuid4().hex, "cache": False})
            assert runner.invoke("ApiFunction", event)["statusCode"] == 202

        figures["cache_miss_in_process_with_moto_sqs"] = timed(miss, min(args.requests, 300))
        payload = json.dumps(body).encode()
        figures["cache_hit_http_1_connection"] = http_load(
            runner.port, payload, key=runner.dev_key, connections=1, per_connection=args.requests
        )
        figures["cache_hit_http_8_connections"] = http_load(
            runner.port, payload, key=runner.dev_key, connections=8, per_connection=args.requests // 8
        )
        time.sleep(2)  # the extra gateway processes are up by now
        figures["cache_hit_http_8_connections_wrk"] = wrk_load(
            runner.port, payload, key=runner.dev_key, connections=8, seconds=5
        )
        miss_payload = json.dumps({**body, "cache": False}).encode()
        figures["cache_miss_http_8_connections_moto_sqs"] = http_load(
            runner.port, miss_payload, key=runner.dev_key, connections=8, per_connection=40
        )
    finally:
        database = runner.database_url
        runner.stop()
        drop_database(database)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
