"""What other use cases do when a job ends, and when the sweeper runs: hooks the entry points register.

Jobs sit below the use cases that make jobs of their own (experiments), so the worker cannot call them; each
handler that runs jobs registers their hooks at start, and the worker and the sweeper call what is there.
"""

from __future__ import annotations

from collections.abc import Callable

from promptlab.core.observability import logger
from promptlab.models.jobs import Job

JobEnded = Callable[[Job, "Job | None"], None]  # (the job as its worker held it, the job as its end left it)
SweepStep = Callable[[], int]  # one bounded pass of the sweeper's; returns the messages it sent

_job_ended: list[JobEnded] = []
_sweep_steps: list[SweepStep] = []


def on_job_ended(hook: JobEnded) -> None:
    """Call `hook` whenever a job ends (registering the same hook twice calls it once)."""
    if hook not in _job_ended:
        _job_ended.append(hook)


def on_sweep(step: SweepStep) -> None:
    """Run `step` in every sweep (registering the same step twice runs it once)."""
    if step not in _sweep_steps:
        _sweep_steps.append(step)


def job_ended(job: Job, ended: Job | None = None) -> None:
    """Tell every hook that `job` ended (`ended`: the job as its end left it, when the caller has it). Best
    effort: the job has ended whatever a hook does; a hook that fails is logged."""
    for hook in _job_ended:
        try:
            hook(job, ended)
        except Exception:  # noqa: BLE001 - the job itself is done; the hook's own caller catches up later
            logger.exception("a job-ended hook failed", job_id=job.id)


def sweep_steps() -> int:
    """Run every registered sweep step; the messages they sent."""
    return sum(step() for step in _sweep_steps)
