"""The economy lane: jobs sent through providers' batch APIs at about half the price, same job API.

`EconomyFunction` runs on a schedule and does two bounded, idempotent passes:

- collect: waiting economy jobs are grouped per tenant, provider and model; a group goes out as one
  provider batch (`custom_id` = job id) once it has `economy_min_jobs` jobs or its oldest job has waited
  `economy_max_wait_seconds` (at most `economy_max_jobs` a batch). The batch row and the jobs' hand-over
  commit before the provider is called, so a crash leaves a `submitting` batch that the next pass resolves.
- poll: each open batch is asked for its status; when it has ended, its results are read and every job is
  settled exactly once (every update is guarded by the job's batch id and `processing` status, so a crash
  between results, or two pollers, can never complete a job twice or lose one):
  succeeded → completed at batch prices (the saving recorded); a retryable error → the normal lane (its
  SQS message is sent); a permanent error → failed; expired or canceled → waits for the next batch once,
  then failed with the reason. A job cancelled meanwhile keeps its cost and drops the answer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta

from promptlab.core import ids
from promptlab.core.clock import utc_now
from promptlab.core.errors import ConfigurationError
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import count, logger
from promptlab.core.settings import get_settings
from promptlab.db import batches_repo, jobs_repo, templates_repo
from promptlab.db.connection import Connection, connection
from promptlab.infra import result_cache
from promptlab.jobs import job_hooks
from promptlab.jobs.lifecycle import announce, dispatch, dispatch_many
from promptlab.jobs.provider_calls import build_call, spend
from promptlab.models.batches import ProviderBatch
from promptlab.models.jobs import CachedResult, Job, job_error
from promptlab.providers.base import BatchItem, GenerationCall, ProviderError
from promptlab.providers.registry import get_batch_provider, min_batch_jobs

SUBMIT_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class EconomyReport:
    submitted: int
    settled: int


def _error(code: str, message: str, retryable: bool, status: int | None = None) -> JsonObject:
    return job_error(code=code, message=message, retryable=retryable, provider_status=status)


def _waited(group: list[Job]) -> float:
    oldest = min(job.created_at or utc_now() for job in group)
    return (utc_now() - oldest).total_seconds()


def _due(group: list[Job], floor: int) -> bool:
    """A group goes out at `economy_min_jobs`, or once its oldest waited `economy_max_wait_seconds` — never
    below the provider's own minimum (`floor`: Bedrock batch inference takes 100 records at least)."""
    settings = get_settings()
    if len(group) < floor:
        return False
    return len(group) >= settings.economy_min_jobs or _waited(group) >= settings.economy_max_wait_seconds


def _too_small_for_too_long(group: list[Job], floor: int) -> bool:
    """A group below its provider's minimum whose oldest job waited `economy_small_group_max_wait_seconds`."""
    return len(group) < floor and _waited(group) >= get_settings().economy_small_group_max_wait_seconds


def collect() -> list[str]:
    """Send every due group of waiting economy jobs as a provider batch; returns our batch ids."""
    settings = get_settings()
    made: list[tuple[str, str, list[Job]]] = []
    normal_lane: list[str] = []
    with connection() as conn, conn.transaction():
        groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
        for job in batches_repo.pending_jobs(conn, limit=settings.economy_max_jobs * 10):
            groups[(job.tenant_id, job.provider, job.model)].append(job)
        for (tenant_id, provider, model), group in groups.items():
            floor = min_batch_jobs(provider)
            if _too_small_for_too_long(group, floor):
                normal_lane += _to_normal_lane(conn, group, floor)
                continue
            if not _due(group, floor):
                continue
            chosen = group[: settings.economy_max_jobs]
            batch_id = ids.new_id("bat")
            batches_repo.insert_batch(
                conn, batch_id=batch_id, tenant_id=tenant_id, provider=provider, model=model, size=len(chosen)
            )
            batches_repo.assign_jobs(conn, batch_id=batch_id, job_ids=[j.id for j in chosen])
            made.append((batch_id, provider, chosen))
    if normal_lane:  # sent once the move committed: a worker must find them in the normal lane
        with connection() as conn:
            dispatch_many(conn, jobs=[(job_id, "low") for job_id in normal_lane])
    for batch_id, provider, jobs in made:
        _submit(batch_id, provider, jobs)
    return [batch_id for batch_id, _, _ in made]


def _to_normal_lane(conn: Connection, group: list[Job], floor: int) -> list[str]:
    """Too few jobs for the provider's batch minimum, for too long: they run now, at normal prices (their
    budget reservation is the normal price's worst case, so it still covers them)."""
    provider = group[0].provider
    warning = (
        f"sent to the normal lane at normal prices: {provider}'s batch API takes {floor} requests at least, and"
        f" only {len(group)} waited {get_settings().economy_small_group_max_wait_seconds} s"
    )
    moved = batches_repo.pending_to_standard_lane(conn, job_ids=[job.id for job in group], warning=warning)
    logger.info("economy group below the batch minimum sent to the normal lane", provider=provider, jobs=len(moved))
    return moved


def _calls(jobs: list[Job]) -> list[tuple[str, GenerationCall]]:
    calls = []
    with connection() as conn:
        for job in jobs:
            version = templates_repo.get_version(conn, template_id=job.template_id, version=job.template_version)
            if version is not None:
                calls.append((job.id, build_call(replace(job, error=None), version)[2]))
    return calls


def _submit(batch_id: str, provider: str, jobs: list[Job]) -> None:
    try:
        status = get_batch_provider(provider).submit_batch(_calls(jobs))
    except (ProviderError, ConfigurationError) as exc:
        retryable = isinstance(exc, ProviderError) and exc.retryable
        with connection() as conn, conn.transaction():
            batches_repo.batch_failed(conn, batch_id=batch_id, error=str(exc))
            if retryable:
                batches_repo.release_jobs(conn, batch_id=batch_id)  # they wait for the next pass
            else:
                for job in jobs:
                    batches_repo.fail(conn, job_id=job.id, batch_id=batch_id, error=_error(
                        "batch_rejected", f"the provider refused the batch: {exc}", False
                    ))  # fmt: skip
        logger.warning("provider batch not submitted", batch_id=batch_id, provider=provider, error=str(exc))
        return
    with connection() as conn:
        batches_repo.batch_submitted(
            conn, batch_id=batch_id, provider_batch_id=status.provider_batch_id, expires_at=status.expires_at
        )
    count("BatchesSubmitted")
    logger.info("provider batch submitted", batch_id=batch_id, provider=provider, jobs=len(jobs))


def poll() -> int:
    """Follow every open batch; settle the jobs of those that ended. Returns the jobs settled."""
    settled = 0
    with connection() as conn:
        batches = batches_repo.open_batches(conn, limit=200)
    for batch in batches:
        if batch.status == "submitting":
            if utc_now() - batch.created_at > SUBMIT_GRACE:  # its submitter died before the provider answered
                with connection() as conn, conn.transaction():
                    released = batches_repo.release_jobs(conn, batch_id=batch.id)
                    batches_repo.batch_failed(conn, batch_id=batch.id, error="never reached the provider")
                logger.warning("abandoned batch released", batch_id=batch.id, jobs=len(released))
            continue
        if batch.provider_batch_id is None:
            continue  # in progress always has the provider's id; a row without one is not ours to follow
        try:
            provider = get_batch_provider(batch.provider)
            status = provider.batch_status(batch.provider_batch_id)
        except (ProviderError, ConfigurationError) as exc:
            logger.warning("batch status unavailable; next pass tries again", batch_id=batch.id, error=str(exc))
            continue
        counts = {k: status.counts.get(k, 0) for k in ("succeeded", "errored", "expired", "canceled")}
        if not status.ended:
            with connection() as conn:
                batches_repo.update_counts(conn, batch_id=batch.id, counts=counts, ended=False)
            continue
        for item in provider.batch_results(batch.provider_batch_id):
            settled += settle(batch, item)
        with connection() as conn:
            unanswered = batches_repo.held_jobs(conn, batch_id=batch.id)
        for job_id in unanswered:  # no result line (an expired or cancelled batch): treated as expired
            settled += settle(batch, BatchItem(custom_id=job_id, kind="expired"))
        with connection() as conn:
            batches_repo.update_counts(conn, batch_id=batch.id, counts=counts, ended=True)
        logger.info("provider batch ended", batch_id=batch.id, counts=counts)
    return settled


def settle(batch: ProviderBatch, item: BatchItem) -> int:
    """Settle one request's outcome; 1 when a job changed, 0 when it was already settled (or gone)."""
    batch_id = batch.id
    with connection() as conn:
        job = batches_repo.job_in_batch(conn, job_id=item.custom_id, batch_id=batch_id)
        if job is None:
            _discard(conn, item, batch_id)
            return 0
        if item.kind == "succeeded" and item.result is not None:
            _complete(conn, job, item, batch_id)
        elif item.kind == "errored":
            failure = item.error or ProviderError(code="batch_error", message="the request failed", retryable=False)
            error = _error(failure.code, f"batch request failed: {failure.message}", failure.retryable, failure.status)
            if failure.retryable:
                if batches_repo.to_standard_lane(conn, job_id=job.id, batch_id=batch_id, error=error):
                    dispatch(conn, job_id=job.id, priority="low")
                return 1
            batches_repo.fail(conn, job_id=job.id, batch_id=batch_id, error=error)
            count("JobsFailed")
        elif job.batch_requeues < 1:
            message = f"the provider batch request {item.kind}; waiting for the next batch"
            batches_repo.back_to_waiting(
                conn, job_id=job.id, batch_id=batch_id, error=_error(f"batch_{item.kind}", message, True)
            )
            return 1
        else:
            message = f"the provider batch request {item.kind} twice"
            batches_repo.fail(
                conn, job_id=job.id, batch_id=batch_id, error=_error(f"batch_{item.kind}", message, False)
            )
            count("JobsFailed")
    announce(job.id, webhook=job.callback_url is not None)
    job_hooks.job_ended(job)
    return 1


def _complete(conn: Connection, job: Job, item: BatchItem, batch_id: str) -> None:
    assert item.result is not None
    outcome = spend(job, item.result, None, batch=True)
    full, cost = spend(job, item.result, None).estimated_cost_usd, outcome.estimated_cost_usd
    saved = full - cost if full is not None and cost is not None else None
    done = batches_repo.complete(conn, job_id=job.id, batch_id=batch_id, outcome=outcome, saved_cost_usd=saved)
    if done is not None:
        result_cache.put_result(job.input_hash, CachedResult.of(done), ttl_seconds=_ttl(job))
        count("JobsCompleted")


def _discard(conn: Connection, item: BatchItem, batch_id: str) -> None:
    """A result for a job the batch no longer holds: if it was cancelled meanwhile, keep what it cost."""
    if item.result is None:
        return
    cancelled = jobs_repo.get_job_any_tenant(conn, job_id=item.custom_id)
    if cancelled is not None and cancelled.status == "cancelled":
        outcome = spend(cancelled, item.result, None, batch=True)
        batches_repo.spend_on_cancelled(conn, job_id=item.custom_id, batch_id=batch_id, outcome=outcome)


def _ttl(job: Job) -> int:
    with connection() as conn:
        version = templates_repo.get_version(conn, template_id=job.template_id, version=job.template_version)
    return version.cache_ttl_seconds if version else get_settings().default_cache_ttl_seconds


def run() -> EconomyReport:
    """One scheduled pass: poll open batches, then send what is due."""
    settled = poll()
    submitted = collect()
    return EconomyReport(submitted=len(submitted), settled=settled)
