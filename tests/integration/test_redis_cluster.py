"""Redis in cluster mode, as ElastiCache Serverless is (DataStores=create): every Redis use works there.

A one-node Redis cluster (all 16,384 slots on one node) speaks the cluster protocol, so the cluster client,
MOVED-free routing, multi-key scripts' same-slot rule and sharded pub/sub are all exercised for real.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from promptlab.core.settings import get_settings
from promptlab.infra import job_ends, provider_throttle, request_limits, result_cache
from promptlab.infra.redis_client import get_redis
from promptlab.local.services import free_port
from promptlab.models.jobs import CachedResult
from tests.support import SetEnv, unique


@pytest.fixture
def cluster(tmp_path: Path, set_env: SetEnv) -> Iterator[str]:
    """A one-node Redis cluster on a free port, and the settings pointed at it."""
    server = shutil.which("redis-server")
    assert server is not None, "redis-server is needed for the cluster-mode test"
    for _ in range(3):  # a free port can be taken by another process before the server binds it
        port = free_port()
        process = subprocess.Popen(
            [server, "--port", str(port), "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        admin = redis.Redis(port=port)
        deadline = time.monotonic() + 30
        while process.poll() is None:
            try:
                admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)  # type: ignore[no-untyped-call]
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the cluster node did not start"
                time.sleep(0.05)
        if process.poll() is None:
            break
    else:
        pytest.fail("the cluster node exited on three ports in a row")
    try:
        while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):  # type: ignore[no-untyped-call]
            assert time.monotonic() < deadline, "the cluster did not become ready"
            time.sleep(0.05)
        set_env(REDIS_URL=f"redis://127.0.0.1:{port}/0", PROMPTLAB_REDIS_CLUSTER="true")
        get_redis.cache_clear()
        request_limits.get_limiter.cache_clear()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        get_redis.cache_clear()
        request_limits.get_limiter.cache_clear()
        process.terminate()
        process.wait(timeout=10)


def test_every_redis_use_works_on_a_cluster(cluster: str) -> None:
    # Given the cluster client
    assert isinstance(get_redis(), redis.RedisCluster) and get_settings().redis_cluster
    # The rate limiter (a multi-key script, with the cache lookup pipelined beside it on another slot)
    cache_key = f"{get_settings().redis_prefix}cache:{unique('h')}"
    get_redis().set(cache_key, b"cached")
    decision = request_limits.check(
        client_ip="10.1.1.1", method="POST", path="/generate", key_id="k1", key_limit=2, also_get=cache_key
    )
    assert decision is not None and decision.admitted and decision.prefetched == b"cached"
    assert request_limits.check_items(key_id="k1", key_limit=2, items=5) is not None
    # The result cache
    result = CachedResult(
        job_id="job_1", output="hello", finish_reason="end_turn", truncated=False, input_tokens=1,
        output_tokens=2, cache_read_tokens=0, cache_write_tokens=0, total_tokens=3, estimated_cost_usd=None,
        answered_by="fake/fake-1",
    )  # fmt: skip
    result_cache.put_result("hash-1", result, ttl_seconds=60)
    assert result_cache.get_result("hash-1") == result
    # Flow control (three keys per route under one hash tag)
    route = (unique("p"), "m")
    assert provider_throttle.reserve(*route, token="t", lease_seconds=30).held
    provider_throttle.settle(*route, token="t", outcome="ok")
    assert provider_throttle.state(*route).limit == 5
    # Long polls: the end of a job wakes its waiter through pub/sub, and the per-key cap holds
    job_id = unique("job")
    with job_ends.listening(job_id, fallback_poll_seconds=10) as wait:
        threading.Timer(0.2, job_ends.publish_end, args=(job_id,)).start()
        started = time.monotonic()
        wait(5)
        assert time.monotonic() - started < 3
    with (
        job_ends.wait_slot("key-1", limit=1, seconds=5),
        pytest.raises(job_ends.TooManyWaits),
        job_ends.wait_slot("key-1", limit=1, seconds=5),
    ):
        pass
    # The key-guessing guard
    for _ in range(3):
        request_limits.record_auth_failure("10.2.2.2")
    assert not request_limits.auth_failures_exceeded("10.2.2.2")  # 3 of 20
