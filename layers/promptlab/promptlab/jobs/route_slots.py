"""A record's place on its provider route (flow control): the invocation it came in, the slot its call
holds, and parking a job whose route cannot take it now."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.observability import count, logger
from promptlab.core.settings import get_settings
from promptlab.infra import provider_throttle
from promptlab.infra.job_queue import JobQueue
from promptlab.jobs.provider_calls import lease_seconds
from promptlab.jobs.store_faults import RetryLater, expect_back
from promptlab.models.jobs import JobRoute

SLOT_POLL_SECONDS = 0.1  # how often a record waiting for a place asks again (slots freed by other workers)


@dataclass(frozen=True)
class Delivery:
    """One SQS record as the worker sees it, and the invocation it came in."""

    body: str
    message_id: str
    receipt_handle: str
    source_arn: str
    invocation: Invocation


class Invocation:
    """The route slots one invocation's records hold (its calls running), so that a record finding every slot
    taken, or sitting out a 429, can wait while a call of its own invocation runs (the invocation lasts until
    that call ends anyway) instead of being parked. One per invocation, not per process: the local runner
    runs several invocations of a function in one process, where Lambda gives each its own sandbox."""

    def __init__(self) -> None:
        self._given_back = threading.Condition()
        self._count = 0

    def reserve(self, provider: str, model: str, *, token: str, lease_seconds: float) -> provider_throttle.Reservation:
        """Ask the route for a slot, counting it here when held (under the lock, so a record told every slot
        is taken never sees a slot this invocation already holds as not counted yet)."""
        with self._given_back:
            reservation = provider_throttle.reserve(provider, model, token=token, lease_seconds=lease_seconds)
            if reservation.held:
                self._count += 1
            return reservation

    def gave_back(self) -> None:
        with self._given_back:
            self._count -= 1
            self._given_back.notify_all()

    def sit_out(self, seconds: float) -> float:
        """Wait `seconds` while a slot is held here (its call keeps the invocation alive anyway); stops when
        none is, and returns the time still to wait then (0: waited it all)."""
        until = time.monotonic() + seconds
        with self._given_back:
            while (left := until - time.monotonic()) > 0:
                if self._count <= 0:
                    return left
                self._given_back.wait(left)
        return 0.0

    def wait_for_one(self, timeout: float) -> bool:
        """Wait until a slot held here is given back, or `timeout`; False at once when none is held here."""
        with self._given_back:
            if self._count <= 0:
                return False
            self._given_back.wait(timeout)
            return True


@dataclass
class Slot:
    """A call's place on its route (flow control): held from before the claim until the call ends."""

    provider: str
    model: str
    token: str
    invocation: Invocation
    settled: bool = False

    def settle(
        self,
        outcome: provider_throttle.Outcome,
        headers: Mapping[str, str] | None = None,
        latency_seconds: float | None = None,
    ) -> float:
        """Give the place back, telling the route how the call went (once); the pause this call's failure
        started (0: none)."""
        if self.settled:
            return 0.0
        self.settled = True
        try:
            return provider_throttle.settle(
                self.provider,
                self.model,
                token=self.token,
                outcome=outcome,
                headers=headers,
                latency_seconds=latency_seconds,
            )
        finally:
            self.invocation.gave_back()


class Parked(Exception):
    """The job waits for its route: its message was sent again, delayed; this copy is acknowledged."""


def hold_slot(route: JobRoute, job_id: str, delivery: Delivery, queue: JobQueue) -> Slot | None:
    """A place on the job's route, or — when the route is paused, its reported budget is used up, or every
    place is taken — the job parked for that long: no attempt spent, no receive counted.
    Every place taken while a call of this invocation runs: the invocation lasts until that call ends anyway,
    so the record waits here (up to `flow_slot_wait_seconds`, asking again as calls end and every 100 ms)
    for a place rather than go to the back of the queue for a second."""
    settings = get_settings()
    if not settings.throttle or route.status not in {"queued", "processing"}:
        return None
    provider, model = route.current
    token = f"{job_id}:{delivery.message_id}"
    lease = lease_seconds(route.max_tokens)
    reservation = delivery.invocation.reserve(provider, model, token=token, lease_seconds=lease)
    give_up = time.monotonic() + settings.flow_slot_wait_seconds
    while (
        reservation.slots_taken
        and (left := give_up - time.monotonic()) > 0
        and delivery.invocation.wait_for_one(min(left, SLOT_POLL_SECONDS))
    ):
        reservation = delivery.invocation.reserve(provider, model, token=token, lease_seconds=lease)
    if reservation.held:
        return Slot(provider=provider, model=model, token=token, invocation=delivery.invocation)
    seconds = max(1, math.ceil(reservation.wait_seconds))
    expect_back(job_id, seconds)
    try:
        queue.park(source_arn=delivery.source_arn, body=delivery.body, seconds=seconds)
    except DependencyUnavailable as exc:  # cannot re-send: wait on this copy instead (one receive counted)
        queue.delay(source_arn=delivery.source_arn, receipt_handle=delivery.receipt_handle, seconds=seconds)
        raise RetryLater(f"{provider}/{model} is busy for {seconds} s") from exc
    count("Throttled")
    logger.info("route busy; job parked", job_id=job_id, provider=provider, model=model, seconds=seconds)
    raise Parked(f"{provider}/{model}: {seconds} s")
