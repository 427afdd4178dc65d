"""When a store fails under a record: the job comes back within seconds, spending no attempt and no receive.

A record whose database (or queue) call fails is not a failed job. Left as a batch item failure it would
wait out the queue's visibility timeout (half an hour); instead its message is sent again with a short,
growing delay and the received copy is acknowledged, so SQS's receive count (the poison-message safety
net) does not move. The new message carries a handback: the claim this delivery may have made, so the next
delivery takes the job over at once rather than waiting for the claim's lease to run out.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import count, logger
from promptlab.core.settings import get_settings
from promptlab.db import jobs_repo
from promptlab.db.connection import connection
from promptlab.infra.job_queue import JobQueue
from promptlab.infra.sqs_batch import store_backoff_seconds
from promptlab.models.jobs import Handback, JobMessage

T = TypeVar("T")
WRITE_PAUSE_SECONDS = 0.5  # between tries of a write that saves a provider's answer


class RetryLater(Exception):
    """The job's message stays on the queue (a batch item failure), visible again after a delay."""


@dataclass
class Claim:
    """What one delivery has done to its job so far: what a handback must say if a store fails now."""

    given: Handback | None = None  # the handback the delivery came with
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent: bool = False  # the claim statement went to the database (it may have committed)
    called: bool = False  # the provider was called under this claim

    def renew(self) -> None:
        """Start over with a new claim (the last one ended: the job was queued again)."""
        self.token, self.sent, self.called = uuid.uuid4().hex, False, False

    def handback(self) -> Handback:
        """The handback for the next delivery: this claim once it may exist, else the one received."""
        waits = (self.given.waits if self.given else 0) + 1
        if self.sent:
            return Handback(holder=self.token, called=self.called, waits=waits)
        given = self.given or Handback()
        return Handback(holder=given.holder, called=given.called, waits=waits)


def give_back(*, job_id: str, source_arn: str, receipt_handle: str, queue: JobQueue, claim: Claim,
              cause: DependencyUnavailable) -> str:  # fmt: skip
    """Send the job's message again after the store backoff, carrying the handback; returns `returned`.
    Raises `RetryLater` when SQS refuses the new message (the received copy is delayed instead)."""
    handback = claim.handback()
    seconds = store_backoff_seconds(handback.waits)
    dependency = cause.details.get("dependency", "unknown")
    count("StoreFaults")
    try:
        queue.park(source_arn=source_arn, body=JobMessage(job_id=job_id, handback=handback).to_body(), seconds=seconds)
    except DependencyUnavailable as exc:
        _keep_received_copy(job_id=job_id, source_arn=source_arn, receipt_handle=receipt_handle, queue=queue,
                            seconds=seconds)  # fmt: skip
        raise RetryLater(f"{dependency} unavailable; the queue refused the new message") from exc
    logger.warning(
        "a store failed under the job; it comes back",
        job_id=job_id,
        dependency=dependency,
        delay_seconds=seconds,
        waits=handback.waits,
    )
    return "returned"


def _keep_received_copy(*, job_id: str, source_arn: str, receipt_handle: str, queue: JobQueue, seconds: int) -> None:
    """SQS refused the new message: the received copy waits instead (one receive counted). When SQS refuses
    that too, the job is marked unsent so the sweeper sends it; when the database refuses that as well, the
    copy comes back when the queue's visibility timeout ends (both stores down at once)."""
    try:
        queue.delay(source_arn=source_arn, receipt_handle=receipt_handle, seconds=seconds)
        return
    except DependencyUnavailable:
        pass
    try:
        with connection() as conn:
            unsent = jobs_repo.mark_unsent(conn, job_id=job_id)
    except DependencyUnavailable:
        logger.error("neither the queue nor the database answers; the job waits for its visibility timeout",
                     job_id=job_id)  # fmt: skip
        return
    logger.warning("the queue refuses the job's message; the sweeper sends it", job_id=job_id, marked=unsent)


def expect_back(job_id: str, seconds: int) -> None:
    """Record when the queued job's message, about to be delayed, is due back, so the sweeper does not take a
    long delay for a lost message. Best effort: without it the sweeper may send one early copy, which the
    claim absorbs."""
    try:
        with connection() as conn:
            jobs_repo.expect_message(conn, job_id=job_id, seconds=seconds)
    except DependencyUnavailable:
        logger.warning("could not record when the delayed job is due; the sweeper may send a copy", job_id=job_id)


def persist(write: Callable[[bool], T]) -> T:
    """Run a write that saves what a provider call produced, trying again while the database is unreachable
    (up to `store_write_wait_seconds`): the answer exists only in this process, and it was paid for.
    `write` is told whether an earlier try may have committed (so it can check before writing twice)."""
    deadline = time.monotonic() + get_settings().store_write_wait_seconds
    retried = False
    while True:
        try:
            return write(retried)
        except DependencyUnavailable:
            if time.monotonic() + WRITE_PAUSE_SECONDS > deadline:
                raise
            retried = True
            count("StoreWriteRetries")
            time.sleep(WRITE_PAUSE_SECONDS)
