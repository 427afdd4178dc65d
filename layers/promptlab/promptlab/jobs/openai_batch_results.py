"""A batch's output and error files, as OpenAI writes them: a line per request keyed by `custom_id`, the job id
as the response's `request_id`, answers as `chat.completion`s with their usage, failures as OpenAI's errors."""

from __future__ import annotations

import json
import tempfile
from typing import IO

from promptlab.core.json_types import JsonObject
from promptlab.db import openai_batches_repo as repo
from promptlab.db.connection import connection
from promptlab.jobs import openai_files
from promptlab.jobs.lifecycle import job_public
from promptlab.jobs.openai_answers import completion, failure
from promptlab.models.jobs import Job
from promptlab.models.openai_batches import StoredBatch


def write_files(stored: StoredBatch) -> tuple[str | None, str | None, bool]:
    """Write the output and error files (deterministic ids: writing twice replaces); (output, error, expired)."""
    suffix = stored.id.removeprefix("batch_")
    expired = False
    with tempfile.SpooledTemporaryFile(1 << 20) as output, tempfile.SpooledTemporaryFile(1 << 20) as errors:
        spools: dict[str, IO[bytes]] = {"output": output, "error": errors}
        sizes = {"output": 0, "error": 0}
        with connection() as conn:
            for job in repo.lines(conn, batch_id=stored.id):
                kind, line = result_line(job)
                expired = expired or (job.error or {}).get("code") == "expired"
                data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                spools[kind].write(data)
                sizes[kind] += len(data)
        written: dict[str, str] = {}
        for kind, spool in spools.items():
            if sizes[kind]:
                spool.seek(0)
                written[kind] = openai_files.store_result_file(
                    tenant_id=stored.tenant_id,
                    name=f"{stored.id}_{kind}.jsonl",
                    body=spool,
                    size=sizes[kind],
                    file_id=f"file-{suffix}{kind[0]}",
                )
    return written.get("output"), written.get("error"), expired


def result_line(job: Job) -> tuple[str, JsonObject]:
    """The job as a line of the output file (answered) or the error file, as OpenAI writes them."""
    public = job_public(job)
    base: JsonObject = {"id": f"batch_req_{job.id.removeprefix('job_')}", "custom_id": job.custom_id}
    if job.status == "completed":
        body = completion(public).model_dump(mode="json")
        return "output", {**base, "response": {"status_code": 200, "request_id": job.id, "body": body}, "error": None}
    code = (job.error or {}).get("code")
    if job.status == "cancelled" or code == "expired":
        reason = "batch_cancelled" if job.status == "cancelled" else "batch_expired"
        words = "the batch was cancelled first" if job.status == "cancelled" else "the batch expired first"
        return "error", {**base, "response": None, "error": {"code": reason, "message": f"{words} (job {job.id})"}}
    status, error = failure(public)
    response = {"status_code": status, "request_id": job.id, "body": {"error": error}}
    return "error", {**base, "response": response, "error": None}
