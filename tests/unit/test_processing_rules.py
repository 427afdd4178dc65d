from collections.abc import Iterator

import pytest

from promptlab.core.errors import PoisonMessage
from promptlab.core.ids import ulid
from promptlab.core.settings import get_settings
from promptlab.jobs.provider_calls import lease_seconds, provider_timeout
from promptlab.jobs.worker import backoff_seconds
from promptlab.models.jobs import parse_job_message


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_backoff_follows_the_schedule_then_repeats_the_last_step() -> None:
    assert [backoff_seconds(n, None) for n in (1, 2, 3, 4)] == [1, 3, 10, 10]


def test_a_longer_retry_after_wins() -> None:
    assert backoff_seconds(1, 42.5) == 42
    assert backoff_seconds(3, 2) == 10


def test_provider_timeout_grows_with_max_tokens_and_is_capped() -> None:
    assert provider_timeout(100) == 35
    assert provider_timeout(64_000) == 240


def test_a_claim_is_leased_for_the_provider_timeout_plus_the_margin() -> None:
    # lease = provider timeout + 60 s (the default margin)
    assert lease_seconds(100) == 95
    assert lease_seconds(64_000) == 300


def test_a_body_that_is_not_a_job_message_is_poison() -> None:
    assert parse_job_message('{"jobId": "job_1", "v": 1}').job_id == "job_1"
    for body in ("not json", '{"v": 1}', '{"jobId": "job_1", "v": 2}'):
        with pytest.raises(PoisonMessage):
            parse_job_message(body)


def test_ulids_sort_by_time_and_match_the_spec() -> None:
    assert ulid(1469918176385).startswith("01ARYZ6S41")
    assert ulid(1_000) < ulid(2_000)
    assert len(ulid()) == 26
