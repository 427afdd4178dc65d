"""`./dev sam` after `sam build`: the shipped artifact is the tested one.

1. Every layer holds exactly its `requirements.txt` — the versions constraints.txt pins, which the tests ran
   — and neither boto3 nor botocore (both are the runtime's).
2. Each function's code plus its layers fits Lambda's 250 MB, and the API function's 50 MB (fails beyond).
3. In a bare interpreter with only boto3 (as Lambda's runtime has it) and the built code and layers on the
   path, every function imports (cold, timed) and answers its sample event from `events/` against the real
   Postgres and Redis and a moto SQS server.

Prints the figures (sizes, cold imports) for the README; exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from promptlab.core.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from promptlab.db.migrate import migrate
from promptlab.local.cfn import load_template
from promptlab.local.services import drop_database, ensure_database, with_database
from tools.lock import pins

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
LIMIT_ALL = 250 * MB
LIMIT_API = 50 * MB
SAMPLE_EVENTS = {
    "ApiFunction": "api-health.json",
    "ConsoleFunction": "console-page.json",
    "WorkerFunction": "worker-job-message.json",
    "DlqFunction": "dlq-dead-letter.json",
    "IntakeFunction": "intake-submission.json",
    "NotifierFunction": "notifier-announcement.json",
    "SweeperFunction": "sweeper-schedule.json",
    "EconomyFunction": "economy-schedule.json",
    "MigrateFunction": "migrate-create.json",
}
QUEUES = {
    "JOB_QUEUE_HIGH_URL": "jobs-high",
    "JOB_QUEUE_NORMAL_URL": "jobs-normal",
    "JOB_QUEUE_LOW_URL": "jobs-low",
    "JOB_DLQ_URL": "jobs-dlq",
    "INTAKE_DLQ_URL": "intake-dlq",
    "NOTIFY_QUEUE_URL": "notify",
}

# Runs inside the bare interpreter: import the handler cold, then call it once with the sample event.
RUNNER = r"""
import json, sys, time, uuid
started = time.perf_counter()
import app
imported = time.perf_counter() - started

class Context:
    function_name = sys.argv[1]
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + sys.argv[1]
    aws_request_id = str(uuid.uuid4())
    log_group_name = log_stream_name = "check"
    def get_remaining_time_in_millis(self):
        return 30000

event = json.load(open(sys.argv[2]))
answer = app.lambda_handler(event, Context())
print(json.dumps({"import_ms": round(imported * 1000), "answer": answer}, default=str))
"""


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def installed(python_dir: Path) -> dict[str, str]:
    """{canonical name: version} of every distribution a layer holds."""
    found: dict[str, str] = {}
    for info in python_dir.glob("*.dist-info"):
        lines = (info / "METADATA").read_text(errors="replace").splitlines()
        fields = dict(line.split(": ", 1) for line in lines[:20] if ": " in line)
        found[str(canonicalize_name(fields["Name"]))] = fields["Version"]
    return found


def check_layer(build: Path, layer: str, requirements: Path, problems: list[str]) -> None:
    wanted: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            wanted[str(canonicalize_name(name))] = version.strip()
    have = installed(build / layer / "python")
    for name in sorted(wanted.keys() | have.keys()):
        if wanted.get(name) != have.get(name):
            problems.append(f"{layer}: {name} is {have.get(name, 'missing')}, tested {wanted.get(name, 'nothing')}")
    pinned = pins()
    for name, version in have.items():
        if pinned.get(name) not in {None, version}:
            problems.append(f"{layer}: {name} {version} but constraints.txt pins {pinned[name]}")
    for name in ("boto3", "botocore"):
        if name in have:
            problems.append(f"{layer}: bundles {name}; boto3 and botocore are the runtime's")


def bare_python(work: Path) -> Path:
    """A venv with only boto3, at the version constraints.txt pins (Lambda's runtime brings its own)."""
    venv = work / "bare"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        boto = pins()["boto3"]
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"boto3=={boto}"], check=True)
    return venv / "bin" / "python"


def answer_catcher() -> tuple[Any, str, list[dict[str, Any]]]:
    """A local stand-in for CloudFormation's pre-signed response URL: keeps every PUT body."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    caught: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_PUT(self) -> None:  # noqa: N802 - the stdlib's name
            caught.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/response", caught


def answered_event(event: Path, work: Path, url: str, first_key_arn: str) -> Path:
    data = json.loads(event.read_text())
    data["ResponseURL"] = url
    data["ResourceProperties"]["FirstKeySecretArn"] = first_key_arn
    copy = work / event.name
    copy.write_text(json.dumps(data))
    return copy


def sqs_server() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    from promptlab.local.services import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def function_paths(build: Path) -> dict[str, list[Path]]:
    """Each built function's code and layer folders, in the order Lambda puts them on the path (load_template
    has merged Globals in, as SAM does: the lists add up)."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    return {
        lid: [build / lid, *(build / ref["Ref"] / "python" for ref in r["Properties"].get("Layers", []))]
        for lid, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def cold_imports(build: Path, runs: int = 3) -> dict[str, float]:
    """Median cold import (ms) of every built function's handler in a bare interpreter with only boto3."""
    work = Path(tempfile.gettempdir()) / "promptlab-check-build"
    work.mkdir(exist_ok=True)
    python = bare_python(work)
    code = "import sys, time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
    figures = {}
    for lid, paths in sorted(function_paths(build).items()):
        prefix = f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}; "
        samples = [
            float(subprocess.run([str(python), "-I", "-c", prefix + code], capture_output=True, text=True,
                                 check=True, cwd=work, env={"POWERTOOLS_SERVICE_NAME": "promptlab"}).stdout)
            for _ in range(runs)
        ]  # fmt: skip
        figures[lid] = round(sorted(samples)[len(samples) // 2], 1)
    return figures


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/promptlab-sam-build")
    problems: list[str] = []
    check_layer(build, "PromptLabLayer", ROOT / "layers/promptlab/requirements.txt", problems)
    check_layer(build, "ProvidersLayer", ROOT / "layers/providers/requirements.txt", problems)
    paths_of = function_paths(build)

    work = Path(tempfile.gettempdir()) / "promptlab-check-build"
    work.mkdir(exist_ok=True)
    python = bare_python(work)
    database = with_database(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), f"pl_build_{uuid.uuid4().hex[:8]}")
    ensure_database(database)
    migrate(database)
    server, endpoint = sqs_server()
    catcher, catcher_url, caught = answer_catcher()
    figures: dict[str, Any] = {}
    try:
        import boto3

        key = secret = "check"
        sqs = boto3.client(
            "sqs", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret
        )
        urls = {env: sqs.create_queue(QueueName=f"check-{name}")["QueueUrl"] for env, name in QUEUES.items()}
        secrets = boto3.client(
            "secretsmanager", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id=key,
            aws_secret_access_key=secret,
        )  # fmt: skip
        first_key_arn = secrets.create_secret(Name="check-first-key", SecretString=uuid.uuid4().hex)["ARN"]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": "",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "check",
            "AWS_SECRET_ACCESS_KEY": "check",
            "AWS_ENDPOINT_URL": endpoint,
            "DATABASE_URL": database,
            "REDIS_URL": os.environ.get("REDIS_URL", DEFAULT_REDIS_URL),
            "PROMPTLAB_REDIS_PREFIX": f"check:{uuid.uuid4().hex[:8]}:",
            "PROMPTLAB_MODE": "local",
            "POWERTOOLS_SERVICE_NAME": "promptlab",
            "POWERTOOLS_METRICS_NAMESPACE": "PromptLab",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            **urls,
        }
        for lid, paths in sorted(paths_of.items()):
            size = sum(size_of(p) for p in paths)
            limit = LIMIT_API if lid == "ApiFunction" else LIMIT_ALL
            if size > limit:
                problems.append(f"{lid}: code and layers are {size / MB:.1f} MB unzipped, over {limit // MB} MB")
            figure: dict[str, Any] = {"mb": round(size / MB, 1), "layers": [p.parent.name for p in paths[1:]]}
            event = ROOT / "events" / SAMPLE_EVENTS.get(lid, "")
            if lid == "MigrateFunction" and event.is_file():  # CloudFormation's answer goes to a local catcher
                event = answered_event(event, work, catcher_url, first_key_arn)
            if not event.is_file():
                problems.append(f"{lid}: no sample event in events/")
            else:
                run = subprocess.run(
                    [str(python), "-I", "-c", f"import sys; sys.path[:0] = {[str(p) for p in paths]!r}\n" + RUNNER,
                     lid, str(event)],
                    capture_output=True, text=True, env=env, timeout=120, cwd=work,
                )  # fmt: skip
                if run.returncode != 0:
                    tail = (run.stderr or run.stdout).strip().splitlines()[-3:]
                    problems.append(f"{lid}: did not answer its sample event: {' | '.join(tail)}")
                else:
                    result = json.loads(run.stdout.strip().splitlines()[-1])
                    figure["cold_import_ms"] = result["import_ms"]
                    answer = result["answer"]
                    figure["answer"] = answer.get("statusCode", answer) if isinstance(answer, dict) else answer
            figures[lid] = figure
        if [answer.get("Status") for answer in caught] != ["SUCCESS"]:
            problems.append(f"MigrateFunction: CloudFormation was answered {caught!r}, not one SUCCESS")
    finally:
        server.stop()
        catcher.shutdown()
        drop_database(database)
    print(json.dumps(figures, indent=2, default=str))
    for problem in problems:
        print(f"BUILD CHECK: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
