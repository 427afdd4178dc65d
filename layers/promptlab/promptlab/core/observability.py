"""The one home of logging, metrics and tracing (Powertools).

- Logs: structured JSON with the correlation id (the API request id, carried by the job to the worker)
  and the job and template ids; prompts, outputs and keys are never logged.
- Metrics: CloudWatch EMF in namespace `PromptLab` (`POWERTOOLS_METRICS_DISABLED=true` turns them off;
  the local runner does unless told otherwise).
- Tracing: X-Ray subsegments around provider calls, in the worker only (`POWERTOOLS_TRACE_DISABLED`).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger(service="promptlab")
metrics = Metrics(namespace="PromptLab", service="promptlab")

# Powertools' batch processors type their logger as the stdlib's; ours has the same interface.
batch_logger = cast(logging.Logger, logger)

_metrics_lock = threading.Lock()
Handler = TypeVar("Handler", bound=Callable[..., Any])


def count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric published when the handler returns (threads of the local runner share the set).

    Nothing is kept when metrics are off: Powertools would still print a full set of 100 values.
    """
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in {"true", "1"}:
        return
    with _metrics_lock:
        metrics.add_metric(name=name, unit=unit, value=value)


def publish_metrics(handler: Handler) -> Handler:
    """Publish the metrics a handler recorded when it returns (Powertools' `log_metrics`, minus its work
    and its warning when there are none: a read records none, and every request paid ~50 µs for that)."""

    @functools.wraps(handler)
    def publishing(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            if metrics.metric_set:
                with _metrics_lock:
                    metrics.flush_metrics()

    return cast(Handler, publishing)


_tracer: Tracer | None = None


def tracer() -> Tracer:
    """The X-Ray tracer (imported on first use: the API function never pays for it)."""
    global _tracer
    if _tracer is None:
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(service="promptlab")
    return _tracer


@contextmanager
def provider_segment(provider: str, model: str) -> Iterator[None]:
    """An X-Ray subsegment around one provider call, annotated with provider and model."""
    with tracer().provider.in_subsegment(f"## {provider}") as segment:
        segment.put_annotation("provider", provider)
        segment.put_annotation("model", model)
        yield
