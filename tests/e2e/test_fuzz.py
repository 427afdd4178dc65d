"""An OpenAPI-driven fuzz run (schemathesis) over every endpoint of the local runner: no 5xx, ever."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from promptlab.api.app import openapi_document
from tests.support.local_stack import KEYS, running_stack

pytestmark = pytest.mark.e2e

schema = schemathesis.openapi.from_dict(openapi_document())

# Bounded so the whole run stays well inside CI's budget (~20 operations × this many cases).
EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Rate limits raised: the fuzzer sends hundreds of requests a minute from one address.
    limits = {"PROMPTLAB_RATE_LIMIT_GENERATE": "1000000", "PROMPTLAB_RATE_LIMIT_READS": "1000000"}
    with running_stack(tmp_path_factory.mktemp("fuzz"), limits) as base:
        yield base


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: schemathesis.Case[Any], fuzz_base: str) -> None:
    response = case.call(base_url=fuzz_base, headers={"Authorization": f"Bearer {KEYS[fuzz_base]}"}, timeout=10)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} → {response.status_code}: {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        if case.path.startswith("/v1/") and "type" in error:  # the OpenAI door answers OpenAI's error shape
            assert set(error) == {"message", "type", "param", "code"} and error["type"], response.text
            return
        # (what the gateway answers itself, such as an unknown method, keeps PromptLab's shape on every path)
        assert error["code"] and error["message"]
        assert error["requestId"] == response.headers.get("x-request-id", [None])[0]
