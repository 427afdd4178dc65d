import itertools

import pytest

from promptlab.jobs.lifecycle import CANCELLED, COMPLETED, FAILED, PROCESSING, QUEUED, TERMINAL, can_transition

ALLOWED = {
    (QUEUED, PROCESSING),  # claimed
    (QUEUED, FAILED),  # expired, dead-lettered
    (QUEUED, CANCELLED),
    (PROCESSING, COMPLETED),
    (PROCESSING, FAILED),  # permanent error, attempts exhausted
    (PROCESSING, QUEUED),  # retryable error, lease recovered
    (PROCESSING, CANCELLED),
    (FAILED, QUEUED),  # retry, redrive
}
STATES = [QUEUED, PROCESSING, COMPLETED, FAILED, CANCELLED]


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_allowed_transitions(current: str, target: str) -> None:
    assert can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), sorted(set(itertools.product(STATES, STATES)) - ALLOWED))
def test_forbidden_transitions(current: str, target: str) -> None:
    assert not can_transition(current, target)


def test_completed_and_cancelled_are_final() -> None:
    assert {COMPLETED, FAILED, CANCELLED} == TERMINAL
    assert not any(can_transition(s, t) for s in (COMPLETED, CANCELLED) for t in STATES)
