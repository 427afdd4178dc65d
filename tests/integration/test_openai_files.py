"""Batch files as an attacker with a valid key would push them (a tenant's storage cap, the generate limit),
and a batch ending while the files bucket fails."""

from __future__ import annotations

import json

import pytest

from promptlab.core.errors import ValidationFailed
from promptlab.db import openai_batches_repo
from promptlab.db.connection import connection
from promptlab.infra.request_limits import route_class
from promptlab.jobs import openai_files
from promptlab.local.runner import LocalRunner
from promptlab.tenancy.auth import Principal
from tests.support import SetEnv


def test_a_tenants_batch_files_stop_at_their_cap_and_deleting_makes_room(runner: LocalRunner, set_env: SetEnv) -> None:
    owner = Principal(tenant_id="default")
    with connection() as conn:
        held = openai_batches_repo.tenant_input_bytes(conn, tenant_id="default")
    set_env(PROMPTLAB_OPENAI_TENANT_MAX_FILE_BYTES=str(held + 30))
    first = openai_files.create_file(principal=owner, filename="a.jsonl", purpose="batch", content=b"x" * 20)
    with pytest.raises(ValidationFailed) as refused:
        openai_files.create_file(principal=owner, filename="b.jsonl", purpose="batch", content=b"y" * 20)
    assert refused.value.fields[0].field == "file" and f"of {held + 30:,}" in refused.value.message
    openai_files.delete_file(tenant_id="default", file_id=first.id)
    assert openai_files.create_file(principal=owner, filename="b.jsonl", purpose="batch", content=b"y" * 20).bytes == 20


@pytest.mark.parametrize("path", ["/v1/batches", "/v1/files", "/v1/files/uploads", "/v1/chat/completions"])
def test_what_makes_jobs_or_stores_files_counts_against_the_generate_limit(path: str) -> None:
    assert route_class("POST", path) == "generate"
    assert route_class("GET", path) == "read"


def test_a_bucket_that_fails_while_a_batch_ends_leaves_it_finalizing_then_a_later_look_ends_it(
    runner: LocalRunner, economy_now: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptlab.core.errors import DependencyUnavailable
    from promptlab.infra import dataset_uploads
    from promptlab.jobs import economy, openai_batches
    from promptlab.models.openai_batches import BatchCreate
    from tests.support import rows, unique

    owner = Principal(tenant_id="default")
    line = {"custom_id": "one", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "fake/fake-1", "messages": [{"role": "user", "content": unique("end")}]}}  # fmt: skip
    made = openai_files.create_file(principal=owner, filename="e.jsonl", purpose="batch",
                                    content=json.dumps(line).encode())  # fmt: skip
    batch = openai_batches.create_batch(principal=owner, request=BatchCreate(
        input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h"))  # fmt: skip
    for _ in range(3):
        economy.run()
    # When the bucket refuses the output file, the read that noticed the end says so (a 503), and the batch
    # is `finalizing`: no second writer takes it while the first may still be at it
    real_put = dataset_uploads.put

    def refuse(**_: object) -> None:
        raise DependencyUnavailable("the files bucket cannot store the file now")

    monkeypatch.setattr(dataset_uploads, "put", refuse)
    with pytest.raises(DependencyUnavailable):
        openai_batches.get_batch(tenant_id="default", batch_id=batch.id)
    monkeypatch.setattr(dataset_uploads, "put", real_put)
    assert openai_batches.get_batch(tenant_id="default", batch_id=batch.id).status == "finalizing"
    with connection() as conn:
        assert openai_batches_repo.take_for_finalizing(conn, batch_id=batch.id, stale_seconds=300) is None
    # Then once that writer is long gone, the next look (here the sweeper's) writes the files and ends it
    rows("UPDATE openai_batches SET finalizing_at = now() - interval '6 minutes' WHERE id = %s RETURNING id", batch.id)
    openai_batches.sweep()
    ended = openai_batches.get_batch(tenant_id="default", batch_id=batch.id)
    assert ended.status == "completed" and ended.output_file_id and ended.request_counts.completed == 1
