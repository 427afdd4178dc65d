"""Batch files as an attacker with a valid key would push them: a tenant's storage cap, the generate limit."""

from __future__ import annotations

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
