"""`AsyncClient`: the same API for asyncio code.

It runs `Client`'s standard-library transport in worker threads (`asyncio.to_thread`), so it needs no HTTP
dependency and behaves exactly like `Client` (retries, typed errors); `generate_many` bounds the calls in
flight with a semaphore.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from promptlab.client.errors import ApiError
from promptlab.client.sync_client import Client, Job, Progress, _progress, refusals
from promptlab.client.transport import RetryPolicy
from promptlab.models.jobs import JobSummary
from promptlab.models.templates import TemplatePublic
from promptlab.models.usage import UsageReport

T = TypeVar("T")


async def _iterate(pages: Iterator[T]) -> AsyncIterator[T]:
    """A blocking iterator (one HTTP call per page) as an async one."""
    done = object()
    while True:
        item = await asyncio.to_thread(next, pages, done)
        if item is done:
            return
        yield item  # type: ignore[misc]


class AsyncTemplates:
    def __init__(self, client: Client) -> None:
        self._sync = client.templates

    async def create(self, name: str, body: str, **fields: Any) -> TemplatePublic:
        return await asyncio.to_thread(self._sync.create, name, body, **fields)

    async def get(self, template_id: str) -> TemplatePublic:
        return await asyncio.to_thread(self._sync.get, template_id)

    def list(self, *, q: str | None = None, page_size: int = 100) -> AsyncIterator[TemplatePublic]:
        return _iterate(self._sync.list(q=q, page_size=page_size))

    async def resolve(self, reference: str) -> str:
        return await asyncio.to_thread(self._sync.resolve, reference)


class AsyncJobs:
    def __init__(self, client: Client) -> None:
        self._sync = client.jobs

    async def get(self, job_id: str, *, wait: float = 0) -> Job:
        return await asyncio.to_thread(self._sync.get, job_id, wait=wait)

    async def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        return await asyncio.to_thread(self._sync.wait, job_id, timeout=timeout)

    def list(self, *, page_size: int = 50, **filters: Any) -> AsyncIterator[JobSummary]:
        return _iterate(self._sync.list(page_size=page_size, **filters))

    async def cancel(self, job_id: str) -> Job:
        return await asyncio.to_thread(self._sync.cancel, job_id)

    async def retry(self, job_id: str) -> Job:
        return await asyncio.to_thread(self._sync.retry, job_id)

    async def delete(self, job_id: str) -> None:
        await asyncio.to_thread(self._sync.delete, job_id)


class AsyncClient:
    """`await client.generate(...)`; the arguments and errors are `Client`'s."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.sync = Client(url, api_key, timeout=timeout, retry=retry)
        self.url = self.sync.url
        self.templates = AsyncTemplates(self.sync)
        self.jobs = AsyncJobs(self.sync)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def generate(
        self,
        template: str,
        input: str | Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        return await asyncio.to_thread(
            self.sync.generate, template, input, wait=wait, timeout=timeout, idempotency_key=idempotency_key, **options
        )

    async def generate_many(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        wait: bool = True,
        concurrency: int = 8,
        progress: bool | Progress = False,
        timeout: float | None = None,
    ) -> list[Job | ApiError]:
        """`Client.generate_many`, with at most `concurrency` long polls in flight."""
        submitted = await asyncio.to_thread(self.sync.submit_many, list(requests))
        outcomes, tally = refusals(submitted, _progress(progress))
        gate = asyncio.Semaphore(max(1, concurrency))

        async def read(index: int, job_id: str) -> None:
            async with gate:
                try:
                    outcome: Job | ApiError = (
                        await self.jobs.wait(job_id, timeout=timeout) if wait else await self.jobs.get(job_id)
                    )
                except ApiError as exc:
                    outcome = exc
            outcomes[index] = outcome
            if wait:
                tally.add(outcome)

        await asyncio.gather(*(read(i, r) for i, r in enumerate(submitted) if isinstance(r, str)))
        return [outcomes[i] for i in range(len(submitted))]

    async def usage(self, *, group_by: str = "day", start: Any = None, end: Any = None) -> UsageReport:
        return await asyncio.to_thread(self.sync.usage, group_by=group_by, start=start, end=end)
