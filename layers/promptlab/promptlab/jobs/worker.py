"""The worker's use case: run one job message exactly as far as it is allowed to go."""

from __future__ import annotations

import math
import time

from aws_lambda_powertools.metrics import MetricUnit

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.json_types import JsonObject
from promptlab.core.observability import count, logger, provider_segment
from promptlab.core.settings import get_settings
from promptlab.db import attempts_repo, jobs_repo, templates_repo
from promptlab.db.connection import connection
from promptlab.infra import provider_throttle, result_cache
from promptlab.infra.job_queue import JobQueue, get_queue
from promptlab.jobs import job_hooks
from promptlab.jobs.lifecycle import announce
from promptlab.jobs.provider_calls import build_call, lease_seconds, spend
from promptlab.jobs.route_slots import Delivery, Parked, Slot, hold_slot
from promptlab.jobs.store_faults import Claim, RetryLater, expect_back, give_back, persist
from promptlab.models.jobs import CachedResult, Job, JobRoute, job_error, parse_job_message
from promptlab.models.templates import TemplateVersion
from promptlab.providers import json_output
from promptlab.providers.base import ProviderError, ProviderResult
from promptlab.providers.registry import get_provider


def backoff_seconds(attempt: int, retry_after: float | None) -> int:
    """The delay before attempt `attempt + 1`: the schedule, or the provider's retry-after if larger."""
    schedule = get_settings().retry_backoff_seconds
    delay = schedule[min(attempt - 1, len(schedule) - 1)]
    return int(max(delay, retry_after or 0))


def _error(exc: ProviderError, attempt: int) -> JsonObject:
    error = job_error(
        code=exc.code, message=exc.message, retryable=exc.retryable, provider_status=exc.status, attempt=attempt
    )
    if exc.retry_after is not None:
        error["retryAfterSeconds"] = exc.retry_after
    if exc.extra:
        error["rateLimit"] = exc.extra
    return error


def _version(job: Job) -> TemplateVersion:
    with connection() as conn:
        version = templates_repo.get_version(conn, template_id=job.template_id, version=job.template_version)
    if version is None:
        raise ProviderError(code="template_missing", message="the template version is gone", retryable=False)
    return version


def _call_provider(job: Job, version: TemplateVersion) -> ProviderResult:
    provider, model, call = build_call(job, version)
    with provider_segment(provider, model):
        return get_provider(provider).generate(call)


def _invalid_output(
    job: Job, result: ProviderResult, why: str, latency_ms: int, delivery: Delivery, queue: JobQueue
) -> None:
    """A JSON-mode answer that does not satisfy the format: its cost is kept, and the job is asked again
    (with the answer and the reason) while attempts last, else it fails with `invalid_output`."""
    attempt = job.attempts
    retry = attempt < job.max_attempts
    spent = spend(job, result, latency_ms)
    echo = json_output.echo(spent.output, max_tokens=job.max_tokens)
    error = job_error(code="invalid_output", message=why, retryable=retry, attempt=attempt, output=echo)
    with connection() as conn, conn.transaction():
        attempts_repo.end_attempt(
            conn, job_id=job.id, n=attempt, outcome="error", error=error, provider_request_id=result.request_id
        )
        jobs_repo.record_invalid_output(conn, job_id=job.id, attempt=attempt, error=error, spend=spent, retry=retry)
    if retry:
        queue.delay(source_arn=delivery.source_arn, receipt_handle=delivery.receipt_handle, seconds=0)
        count("JobRetries")
        logger.info("job answer was not valid JSON for its format; asked again", job_id=job.id, attempt=attempt)
        raise RetryLater(f"invalid_output: {why}")
    announce(job.id, webhook=job.callback_url is not None)
    job_hooks.job_ended(job)
    count("JobsFailed")
    logger.warning("job failed: no valid JSON answer", job_id=job.id, attempt=attempt)


def _complete(job: Job, result: ProviderResult, latency_ms: int, cache_ttl_seconds: int) -> None:
    outcome = spend(job, result, latency_ms)
    usage = result.usage

    def write(retried: bool) -> Job | None:
        # The job's state and its attempt's outcome commit together, so a crash cannot leave one without the other.
        with connection() as conn, conn.transaction():
            if retried and (saved := jobs_repo.completed_by(conn, job_id=job.id, attempt=job.attempts)):
                return saved  # the try the database dropped had committed
            done = jobs_repo.complete_job(conn, job_id=job.id, attempt=job.attempts, result=outcome)
            if done is None:
                # Cancelled during the call: the tokens were spent, so they are billed once; the output is dropped.
                jobs_repo.record_spend_on_cancelled(conn, job_id=job.id, attempt=job.attempts, result=outcome)
            attempts_repo.end_attempt(
                conn,
                job_id=job.id,
                n=job.attempts,
                outcome="succeeded" if done else "discarded",
                error=None,
                provider_request_id=result.request_id,
            )
        return done

    done = persist(write)
    if done:
        if not job.route_index:  # a fallback's answer is not what the request's own model would say
            result_cache.put_result(job.input_hash, CachedResult.of(done), ttl_seconds=cache_ttl_seconds)
        announce(job.id, webhook=job.callback_url is not None)
        job_hooks.job_ended(job, done)
        count("JobsCompleted")
        count("ProviderLatency", latency_ms, MetricUnit.Milliseconds)
        count("InputTokens", usage.input_tokens)
        count("OutputTokens", usage.output_tokens)
        cost = done.estimated_cost_usd
        if cost is not None:  # in micro-dollars: metric values are floats, money is not
            count("CostMicroUSD", int(cost * 1_000_000))
        logger.info(
            "job completed",
            job_id=job.id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            latency_ms=latency_ms,
        )
    else:
        logger.warning("job result discarded: the job is no longer held by this attempt", job_id=job.id)


class ThrottledHere(Exception):
    """The provider refused the call with a 429 and the job sat out its retry-after here: ask again."""


def _give_back_throttled(job: Job, exc: ProviderError, error: JsonObject, delivery: Delivery, queue: JobQueue) -> bool:
    """A 429 is the provider refusing the call before any work (it bills nothing): flow control, not a
    failure of this job. The route's limit was cut already; the job keeps its attempts and waits for the
    provider's retry-after (else the backoff), up to `max_throttles` times: here, keeping its place, while
    other calls of this invocation keep it alive anyway (a wait up to `flow_slot_wait_seconds`), else parked
    like a job waiting for its route (re-sent with a delay, this copy acknowledged: no receive counted).
    True when it was parked; raises `ThrottledHere` when it waited here."""
    if exc.status != 429 or not exc.retryable:
        return False
    settings = get_settings()
    with connection() as conn, conn.transaction():
        if not jobs_repo.requeue_throttled(
            conn, job_id=job.id, attempt=job.attempts, error=error, max_throttles=settings.max_throttles
        ):
            return False
        attempts_repo.end_attempt(
            conn, job_id=job.id, n=job.attempts, outcome="throttled", error=error, provider_request_id=None
        )
    # The provider said when (`retry-after`): that long; else the backoff schedule, by throttles met.
    wait = exc.retry_after if exc.retry_after is not None else float(backoff_seconds(job.throttles + 1, None))
    count("JobsThrottled")
    if wait <= settings.flow_slot_wait_seconds:
        wait = delivery.invocation.sit_out(wait)
        if wait <= 0:
            logger.info("provider throttled the call; no attempt spent, asking again", job_id=job.id)
            raise ThrottledHere(str(exc))
    delay = max(1, math.ceil(wait))
    expect_back(job.id, delay)
    try:
        queue.park(source_arn=delivery.source_arn, body=delivery.body, seconds=delay)
    except DependencyUnavailable as send_failed:  # cannot re-send: wait on this copy instead (one receive)
        queue.delay(source_arn=delivery.source_arn, receipt_handle=delivery.receipt_handle, seconds=delay)
        raise RetryLater(str(exc)) from send_failed
    logger.info("provider throttled the call; no attempt spent", job_id=job.id, delay_seconds=delay, code=exc.code)
    return True


def _unsent(job_id: str) -> None:
    """The queue refused the queued job's message: the sweeper sends it (within a minute) instead."""
    with connection() as conn:
        jobs_repo.mark_unsent(conn, job_id=job_id)
    logger.warning("the queue refused the job's message; the sweeper sends it", job_id=job_id)


def _handle_failure(
    job: Job, exc: ProviderError, delivery: Delivery, queue: JobQueue, *, paused_route_for: float = 0.0
) -> None:
    attempt = job.attempts
    error = _error(exc, attempt)
    if _give_back_throttled(job, exc, error, delivery, queue):
        return
    retry = exc.retryable and attempt < job.max_attempts
    # A provider that failed for good hands the job to the next fallback, with a fresh attempt budget.
    fall_back = not retry and exc.code != "content_refused" and job.route.has_next
    if exc.retryable and not retry and not fall_back:
        reason = f"attempts exhausted ({attempt} of {job.max_attempts}): {exc.code}: {exc.message}"
        error = {**error, "message": reason}
        # Sent before the job is failed: if this process dies here, the redelivery ends the job the same way.
        queue.dead_letter(body=delivery.body, job_id=job.id, reason=reason, attempts=attempt)

    delay = backoff_seconds(attempt - job.throttles, exc.retry_after)  # throttled calls do not escalate it
    if paused_route_for > 0:
        # This call's failure paused the route (a failed probe): the job comes back after the jobs parked
        # for the pause, so that the next probe is another job's and one job does not spend all its
        # attempts probing an outage (its backoff would end just as the pause does, first in line).
        delay = max(delay, math.ceil(paused_route_for) + 1)

    def write(_retried: bool) -> None:  # each statement is guarded, so a second try after a commit changes nothing
        with connection() as conn, conn.transaction():
            attempts_repo.end_attempt(
                conn, job_id=job.id, n=attempt, outcome="error", error=error, provider_request_id=None
            )
            if fall_back:
                jobs_repo.next_route(
                    conn, job_id=job.id, attempt=attempt, extra_attempts=get_settings().max_attempts, error=error
                )
            elif retry:
                jobs_repo.requeue_job(conn, job_id=job.id, attempt=attempt, error=error, due_in_seconds=delay)
            else:
                jobs_repo.fail_job(conn, job_id=job.id, error=error)

    persist(write)
    if fall_back:
        # A fresh message, so SQS's receive count (the poison safety net) starts again for the next route.
        try:
            queue.send_job(job_id=job.id, priority=job.priority)
        except DependencyUnavailable as send_failed:
            _unsent(job.id)
            raise RetryLater("the next fallback could not be queued; the sweeper sends it") from send_failed
        logger.info("job moves to its next fallback", job_id=job.id, code=exc.code)
        return
    if retry:
        try:
            queue.delay(source_arn=delivery.source_arn, receipt_handle=delivery.receipt_handle, seconds=delay)
        except DependencyUnavailable as delay_failed:
            _unsent(job.id)  # the copy comes back only after the visibility timeout: the sweeper sends one sooner
            raise RetryLater("the retry's delay was refused; the sweeper sends the job") from delay_failed
        count("JobRetries")
        logger.info("job will retry", job_id=job.id, attempt=attempt, delay_seconds=delay, code=exc.code)
        raise RetryLater(str(exc)) from exc
    announce(job.id, webhook=job.callback_url is not None)
    job_hooks.job_ended(job)
    count("JobsFailed")
    logger.warning("job failed", job_id=job.id, code=exc.code, retryable=exc.retryable, attempt=attempt)


def process_delivery(delivery: Delivery, queue: JobQueue | None = None) -> str:
    """Claim, call, and complete or fail one job; returns what happened (`completed`, `parked`, `skipped`, …)."""
    message = parse_job_message(delivery.body)
    queue = queue or get_queue()
    claim = Claim(given=message.handback)
    try:
        return _deliver(message.job_id, delivery, queue, claim)
    except DependencyUnavailable as exc:  # a store, not the job, failed: the job comes back within seconds
        return give_back(
            job_id=message.job_id,
            source_arn=delivery.source_arn,
            receipt_handle=delivery.receipt_handle,
            queue=queue,
            claim=claim,
            cause=exc,
        )


def _deliver(job_id: str, delivery: Delivery, queue: JobQueue, claim: Claim) -> str:
    while True:  # again after a 429 sat out here (at most `max_throttles` times: the job counts them)
        with connection() as conn:
            route = jobs_repo.route_of(conn, job_id=job_id)
        if route is None:
            logger.info("job not claimable; message acknowledged", job_id=job_id, status="missing")
            return "skipped"
        try:
            slot = hold_slot(route, job_id, delivery, queue)
        except Parked:
            return "parked"
        try:
            return _process(job_id, route, delivery, queue, slot, claim)
        except ThrottledHere:
            claim.renew()  # the 429 ended that claim (the job is queued again)
            continue
        finally:
            if slot is not None:
                slot.settle("none")  # the call never happened (not claimable, a crash before it)


def _process(job_id: str, route: JobRoute, delivery: Delivery, queue: JobQueue, slot: Slot | None, claim: Claim) -> str:
    """Claim, call, and complete or fail one job."""
    with connection() as conn:
        # Claim and attempt row commit together: a job in `processing` always has its open attempt.
        with conn.transaction():
            claim.sent = True
            job = jobs_repo.claim_job(
                conn,
                job_id=job_id,
                lease_seconds=lease_seconds(route.max_tokens),
                token=claim.token,
                handback=claim.given,
            )
            if job is not None:
                if job.attempts > 1:  # taken over from a worker whose lease ran out: its call may have been billed
                    attempts_repo.interrupt_attempt(conn, job_id=job.id, n=job.attempts - 1)
                attempts_repo.start_attempt(conn, job_id=job.id, n=job.attempts)
        if job is None:
            current = jobs_repo.get_job_any_tenant(conn, job_id=job_id)
            logger.info(
                "job not claimable; message acknowledged",
                job_id=job_id,
                status=current.status if current else "missing",
            )
            return "skipped"
    # The API request that made the job is the correlation id of every line about it.
    logger.thread_safe_append_keys(job_id=job.id, template_id=job.template_id, correlation_id=job.request_id)
    started = time.monotonic()
    try:
        try:
            version = _version(job)
            claim.called = True
            result = _call_provider(job, version)
        except ProviderError as exc:
            paused = slot.settle(provider_throttle.outcome_of(exc.status, exc.code), exc.extra) if slot else 0.0
            _handle_failure(job, exc, delivery, queue, paused_route_for=paused)
            return "failed"
        latency = time.monotonic() - started
        if slot is not None:
            slot.settle("ok", result.rate_limits, latency)
        latency_ms = int(latency * 1000)
        response_format = job.params.get("responseFormat")
        why = json_output.problem(result.text, response_format) if response_format and not result.tool_calls else None
        if why is not None:
            _invalid_output(job, result, why, latency_ms, delivery, queue)
            return "failed"
        _complete(job, result, latency_ms=latency_ms, cache_ttl_seconds=version.cache_ttl_seconds)
        return "completed"
    finally:
        logger.thread_safe_remove_keys(["job_id", "template_id", "correlation_id"])
