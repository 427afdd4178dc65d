"""10,000 lines through the OpenAI Batch API, from upload to the output file (`./dev bench batches`; figures,
not tests).

`promptlab local` runs as a user starts it, with stand-ins answering Anthropic's and OpenAI's batch APIs at
once (and the fake provider's); the official `openai` SDK uploads the file, creates the batch, polls it and
downloads the output. Reported: each phase's time, and the local runner's peak memory (VmHWM, every process
of it) before and after the batch was created, which bounds what reading the file cost the API.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import openai

from benchmarks.__main__ import ROOT

MODELS = ["claude-haiku-4-5", "gpt-4.1-mini", "fake/fake-1"]


def _peak_kb(pid: int) -> int:
    """The process's and its children's peak resident memory (kB)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            for row in status.read_text().splitlines():
                if row.startswith("VmHWM:"):
                    total += int(row.split()[1])
    return total


def main(lines: int = 10_000) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.support import local_stack
    from tests.support.provider_server import ProviderServer

    server = ProviderServer().start()
    env = {
        "ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": server.url,
        "OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": server.url + "/v1",
        "PROMPTLAB_ECONOMY_MIN_JOBS": "1", "PROMPTLAB_ECONOMY_MAX_WAIT_SECONDS": "0",
        # Locally a form is not base64-encoded on its way to the function: 20,000 lines (4.6 MB) fit in a body
        "PROMPTLAB_OPENAI_FILE_MAX_BYTES": "5000000",
        "PROMPTLAB_RATE_LIMIT_READS": "0", "PROMPTLAB_RATE_LIMIT_GENERATE": "0", "POWERTOOLS_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    tag = uuid.uuid4().hex[:8]
    rows = [
        {"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": MODELS[n % 3], "max_tokens": 100,
                  "messages": [{"role": "user", "content": f"Summarise ticket {n} ({tag}): the invoice is wrong."}]}}
        for n in range(lines)
    ]  # fmt: skip
    content = "\n".join(json.dumps(r) for r in rows).encode() + b"\n"
    figures: dict[str, object] = {"lines": lines, "file_bytes": len(content)}
    data = Path(tempfile.mkdtemp(prefix="promptlab-batches-"))
    try:
        with local_stack.running_stack(data, env, args=("--schedule-speedup", "30")) as base:
            runner_pid = int(json.loads((data / "local-stack.json").read_text()).get("pid") or 0) or _find_runner(base)
            client = openai.OpenAI(base_url=base + "/v1", api_key=local_stack.KEYS[base], max_retries=0, timeout=120)
            started = time.perf_counter()
            made = client.files.create(file=("tickets.jsonl", io.BytesIO(content)), purpose="batch")
            uploaded = time.perf_counter()
            before = _peak_kb(runner_pid)
            batch = client.batches.create(input_file_id=made.id, endpoint="/v1/chat/completions",
                                          completion_window="24h")  # fmt: skip
            created = time.perf_counter()
            after = _peak_kb(runner_pid)
            while batch.status not in {"completed", "failed", "expired", "cancelled"}:
                time.sleep(0.5)
                batch = client.batches.retrieve(batch.id)
            ended = time.perf_counter()
            output = client.files.content(batch.output_file_id or "").text.splitlines()
            done = time.perf_counter()
            figures.update(
                status=batch.status, output_lines=len(output),
                upload_s=round(uploaded - started, 2), create_s=round(created - uploaded, 2),
                run_s=round(ended - created, 2), download_s=round(done - ended, 2), total_s=round(done - started, 2),
                peak_mb_before=round(before / 1024, 1), peak_mb_after=round(after / 1024, 1),
            )  # fmt: skip
    finally:
        server.stop()
    print("openai batch figures:", json.dumps(figures))
    return 0


def _find_runner(base: str) -> int:
    """The `promptlab local` process serving `base` (by its port on the command line)."""
    port = base.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"local" in cmd and port.encode() in cmd and os.getpid() != int(proc.name):
                return int(proc.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
