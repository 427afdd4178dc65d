"""A dataset file at the size cap, read by the API function (`./dev bench uploads`; figures, not tests).

The stack runs in this process (its S3 and SQS in a moto server of their own, so the file's bytes held there
do not count); the file is written to disk and PUT from there. Reported: how much the process's peak memory
grew while `POST /datasets` read the upload, and how long it took, for
- at_cap: 50,000 rows of about 2,000 bytes (a 100 MB file, the default cap), stored;
- too_many_rows: 1,000,000 lines of `{"input": {}}` (14 MB), refused at row 50,001.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from benchmarks.__main__ import ROOT, api_event


def _write(path: Path, rows: int, line: bytes) -> int:
    with path.open("wb") as out:
        for _ in range(rows):
            out.write(line)
    return path.stat().st_size


def _put(url: str, path: Path) -> None:
    with path.open("rb") as data:
        request = urllib.request.Request(url, data=data, method="PUT")
        request.add_header("Content-Type", "application/x-ndjson")
        request.add_header("Content-Length", str(path.stat().st_size))
        with urllib.request.urlopen(request, timeout=300) as answer:
            assert answer.status == 200


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> int:
    from promptlab.local.runner import LocalRunner
    from promptlab.local.services import drop_database, free_port, stop_process

    port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="promptlab-uploads-"))
    time.sleep(1.5)
    runner = LocalRunner(
        template=ROOT / "template.yaml", serve_http=False, run_pollers=False, data_dir=folder / "data",
        database_name=f"promptlab_bench_{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    runner.start()
    try:
        cases = {
            "at_cap": (50_000, json.dumps({"input": {"ticket": "x" * 1_940}, "expected": "ok"}).encode() + b"\n"),
            "too_many_rows": (1_000_000, b'{"input": {}}\n'),
        }
        for name, (rows, line) in cases.items():
            path = folder / f"{name}.jsonl"
            size = _write(path, rows, line)

            def call(method: str, route: str, body: Any = None) -> dict[str, Any]:
                answer: dict[str, Any] = runner.invoke("ApiFunction", api_event(runner, method, route, body))
                return answer

            upload = json.loads(call("POST", "/datasets/uploads", {"format": "jsonl"})["body"])
            _put(upload["url"], path)
            before = _peak_mb()
            started = time.perf_counter()
            answer = call(
                "POST", "/datasets", {"name": uuid.uuid4().hex, "format": "jsonl", "upload": upload["uploadId"]}
            )
            seconds = time.perf_counter() - started
            body = json.loads(answer["body"])
            print(json.dumps({
                "case": name, "file_mb": round(size / 1e6, 1), "rows": rows, "status": answer["statusCode"],
                "stored_rows": body.get("rowCount"), "message": body.get("error", {}).get("message"),
                "seconds": round(seconds, 2), "peak_memory_growth_mb": round(_peak_mb() - before, 1),
            }), flush=True)  # fmt: skip
            path.unlink()
    finally:
        runner.stop()
        drop_database(runner.database_url)
        stop_process(moto)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
