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
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

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


_warm_functions: set[str] = set()
_warm_lock = threading.Lock()


@overload
def inject_lambda_context(handler: Handler) -> Handler: ...


@overload
def inject_lambda_context(*, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]: ...


def inject_lambda_context(
    handler: Handler | None = None, *, correlation_id_path: str | None = None
) -> Handler | Callable[[Handler], Handler]:
    """Powertools' `inject_lambda_context`, kept per invocation instead of per process.

    Each log line of an invocation carries its own function's name, ARN, memory, request id and cold start
    (and `correlation_id`, read from the event at `correlation_id_path`). In Lambda one process runs one
    function, so this is what Powertools does; the local runner hosts every function in one process, where
    Powertools' process-wide keys named whichever function ran last. The keys live in a context variable:
    a thread the handler starts with `copy_context()` keeps them.
    """

    def decorate(function: Handler) -> Handler:
        @functools.wraps(function)
        def with_context(event: Any, context: Any) -> Any:
            with _warm_lock:
                cold = context.function_name not in _warm_functions
                _warm_functions.add(context.function_name)
            keys = {
                "cold_start": cold,
                "function_name": context.function_name,
                "function_memory_size": context.memory_limit_in_mb,
                "function_arn": context.invoked_function_arn,
                "function_request_id": context.aws_request_id,
            }
            if correlation_id_path:
                from aws_lambda_powertools.utilities import jmespath_utils

                keys["correlation_id"] = jmespath_utils.query(envelope=correlation_id_path, data=event)
            logger.thread_safe_append_keys(**keys)
            try:
                return function(event, context)
            finally:
                logger.thread_safe_remove_keys(list(keys))

        return cast(Handler, with_context)

    return decorate(handler) if handler is not None else decorate


def correlation_id() -> str | None:
    """The current invocation's correlation id (the API request id) as `inject_lambda_context` set it."""
    value = logger.thread_safe_get_current_keys().get("correlation_id") or logger.get_correlation_id()
    return str(value) if value else None


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
