"""Our own stores failing under load (`./dev bench faults [scenario…]`; figures, not tests).

Each scenario runs `promptlab local` on a Postgres and a Redis of its own (the machine's binaries), the fake
provider answering in 0.3 s, and submits jobs over HTTP at 25 a second while the stores fail:
- crash_then_cache_loss: Postgres stopped at once (as a failover does) 3 s in, back 5 s later; then Redis
  killed 12 s in and replaced by an empty node 3 s later;
- database_outage: Postgres down for 30 s, 5 s into a 40 s load;
- database_outage_short_wait: the same with connections waiting 2 s (the worker's wait in AWS; here the
  API's too, as the local runner hosts both), so the worker gives its records back to the queue.
Targets: every accepted job ends within 60 s of the last store coming back, none lost, none paid for
twice, no answer a 500.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.fault_run import Event, StoreStack, cache_loss, database_crash, run, store_stack

RATE = 25  # jobs a second
WAIT_LIMIT = 300  # seconds after the last store is back before a run stops following its jobs


def _run(
    seconds: float, timeline: Callable[[StoreStack], list[Event]], env: dict[str, str] | None = None
) -> dict[str, Any]:
    with store_stack(Path(tempfile.mkdtemp(prefix="promptlab-faults-")), extra_env=env) as stack:
        result = run(stack, rate=RATE, seconds=seconds, timeline=timeline(stack), wait_limit=WAIT_LIMIT)
        figures = result.figures()
        figures["given_back"] = stack.logged("a store failed under the job; it comes back")
        figures["answers_500"] = result.answers[500]
        ended = result.ended_after
        figures["target_met"] = (
            ended is not None and ended <= 60 and result.answers[500] == 0 and result.answered_twice == 0
            and result.billed_twice == 0 and result.no_answer == 0
        )  # fmt: skip
        return figures


def crash_then_cache_loss() -> dict[str, Any]:
    return _run(18, lambda s: database_crash(s, at=3, down_for=5) + cache_loss(s, at=12, down_for=3))


def database_outage() -> dict[str, Any]:
    return _run(40, lambda s: database_crash(s, at=5, down_for=30))


def database_outage_short_wait() -> dict[str, Any]:
    return _run(40, lambda s: database_crash(s, at=5, down_for=30), {"PROMPTLAB_DB_CONNECT_WAIT_SECONDS": "2"})


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "crash_then_cache_loss": crash_then_cache_loss,
    "database_outage": database_outage,
    "database_outage_short_wait": database_outage_short_wait,
}


def main() -> int:
    chosen = sys.argv[1:] or list(SCENARIOS)
    for name in chosen:
        print(json.dumps({"scenario": name, **SCENARIOS[name]()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
