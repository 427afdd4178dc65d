"""`promptlab.client` against `promptlab local` started as a user starts it."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest

from promptlab.client import (
    ApiError,
    AsyncClient,
    Client,
    Job,
    NotFound,
    Unauthorized,
    ValidationError,
)
from tests.support.local_stack import KEYS

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(local_stack: str) -> Client:
    return Client(local_stack, KEYS[local_stack])


def a_template(client: Client, **fields: Any) -> str:
    name = f"client-{uuid.uuid4().hex[:8]}"
    client.templates.create(name, fields.pop("body", "Explain {{ topic }} in {{ words }} words."), **fields)
    return name


def test_generate_by_name_waits_and_returns_a_typed_job(client: Client) -> None:
    name = a_template(client, variablesSchema={
        "type": "object", "required": ["topic", "words"],
        "properties": {"topic": {"type": "string"}, "words": {"type": "integer", "maximum": 500}},
    })  # fmt: skip
    job = client.generate(name, {"topic": "queues", "words": 50})
    assert isinstance(job, Job) and job.status == "completed" and job.id.startswith("job_")
    assert job.output and "Explain queues in 50 words." in job.output
    assert isinstance(job.estimated_cost_usd, Decimal) and job.estimated_cost_usd > 0
    assert client.jobs.get(job.id).output == job.output
    # A bad value is a typed error naming the field, with the request id to quote
    with pytest.raises(ValidationError) as bad:
        client.generate(name, {"topic": "queues", "words": 5000})
    assert [f.field for f in bad.value.fields] == ["input.words"] and bad.value.request_id
    assert bad.value.status == 422 and bad.value.code == "validation_error"


def test_errors_are_typed(client: Client, local_stack: str) -> None:
    with pytest.raises(NotFound) as missing:
        client.generate("no-such-template", "x")
    assert missing.value.code == "not_found"
    with pytest.raises(Unauthorized):
        Client(local_stack, "pl_not-a-key").jobs.get("job_x")
    with pytest.raises(NotFound) as unknown_job:
        client.jobs.get("job_nope")
    assert unknown_job.value.request_id and unknown_job.value.status == 404


def test_generate_many_keeps_order_reports_progress_and_refusals_in_place(client: Client) -> None:
    name = a_template(client, body="Summarise {{ topic }}.")
    requests: list[dict[str, Any]] = [{"template": name, "input": f"topic {i}"} for i in range(120)]
    requests[7] = {"template": name, "input": {"nope": "x"}}  # not a variable of the template
    seen: list[tuple[int, int, int]] = []
    results = client.generate_many(requests, concurrency=6, progress=lambda *p: seen.append(p))
    assert len(results) == 120  # two POST /generate/batch calls (100 + 20)
    refused = results[7]
    assert isinstance(refused, ValidationError) and refused.fields
    jobs = [r for i, r in enumerate(results) if i != 7]
    assert all(isinstance(j, Job) and j.status == "completed" for j in jobs)
    # In the requests' order: result i answers request i
    assert all(f"Summarise topic {i}." in (r.output or "") for i, r in enumerate(results) if isinstance(r, Job))
    assert seen[-1] == (120, 120, 1) and len(seen) == 120


def test_generate_many_answers_each_bad_item_in_its_place(client: Client) -> None:
    name = a_template(client, body="Say {{ topic }}.")
    requests: list[dict[str, Any]] = [
        {"template": name, "input": "a"},
        {"template": "no-such-template", "input": "b"},  # an unknown name: its own 404
        {"input": "c"},  # no template at all
        {"template": name, "input": "d", "temperatur": 0.3},  # an option generate does not take
        {"template": name, "input": "e", "maxTokens": 0, "max_tokens": 0},  # a value the API refuses
        {"template": name, "input": "f"},
    ]
    results = client.generate_many(requests)
    assert [type(r).__name__ for r in results] == ["JobPublic", "NotFound", "ValidationError", "ValidationError",
                                                   "ValidationError", "JobPublic"]  # fmt: skip
    assert "template" in str(results[2]) and "temperatur" in str(results[3]) and "maxTokens" in str(results[4])


def test_job_lists_page_through_every_job(client: Client) -> None:
    name = a_template(client, body="Page {{ n }}.")
    template_id = client.templates.resolve(name)
    results = client.generate_many([{"template": name, "input": str(i)} for i in range(12)])
    made = {r.id for r in results if isinstance(r, Job)}
    listed = {job.id for job in client.jobs.list(template_id=template_id, page_size=5)}
    assert listed == made and len(made) == 12
    assert [t.name for t in client.templates.list(q=name)] == [name]


def test_the_async_client_does_the_same(local_stack: str) -> None:
    async def run() -> tuple[list[Job | ApiError], list[str]]:
        async with AsyncClient(local_stack, KEYS[local_stack]) as client:
            name = f"async-{uuid.uuid4().hex[:8]}"
            await client.templates.create(name, "Async {{ x }}.")
            one = await client.generate(name, "one")
            assert one.status == "completed"
            many = await client.generate_many([{"template": name, "input": str(i)} for i in range(10)], concurrency=3)
            template_id = await client.templates.resolve(name)
            ids = [job.id async for job in client.jobs.list(template_id=template_id, page_size=4)]
            return many, ids

    many, ids = asyncio.run(run())
    assert all(isinstance(j, Job) and j.status == "completed" for j in many)
    assert {j.id for j in many if isinstance(j, Job)} <= set(ids) and len(ids) == 11
