"""Functions of the template, loaded from their folders and invoked in this process like Lambda would."""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptlab.core.json_types import LambdaEvent
from promptlab.core.observability import logger
from promptlab.local.stack import ACCOUNT_ID, FunctionSpec

Handler = Callable[[LambdaEvent, Any], Any]


@dataclass
class LocalContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def report_line(request_id: str, duration_ms: float, memory_mb: int, init_ms: float | None = None) -> str:
    """Lambda's end-of-invocation line (billed per started millisecond), so cost can be read off a run."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration_ms)} ms\tMemory Size: {memory_mb} MB"
    )
    return line + (f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else "")


class LocalFunction:
    """One function: its module is imported once (a warm sandbox), then invoked per event."""

    def __init__(self, spec: FunctionSpec, region: str, *, report: bool = False) -> None:
        self.spec = spec
        self.region = region
        self.report = report
        self._handler: Handler | None = None
        self._init_ms: float | None = None
        self._lock = threading.Lock()

    def _load(self) -> Handler:
        module_name, _, attribute = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / (module_name.replace(".", "/") + ".py")
        unique = f"promptlab_local_{self.spec.logical_id}"
        loader_spec = importlib.util.spec_from_file_location(unique, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load {path} for {self.spec.logical_id}")
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        handler: Handler = getattr(module, attribute)
        return handler

    @property
    def handler(self) -> Handler:
        if self._handler is None:
            with self._lock:
                if self._handler is None:
                    started = time.monotonic()
                    self._handler = self._load()
                    self._init_ms = (time.monotonic() - started) * 1000
        return self._handler

    def invoke(self, event: LambdaEvent) -> Any:
        """Call the handler with a fresh context; a run past the timeout is reported, not killed."""
        context = LocalContext(
            function_name=self.spec.name,
            memory_limit_in_mb=self.spec.memory_mb,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.spec.name}",
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.spec.timeout_seconds,
            log_group_name=f"/aws/lambda/{self.spec.name}",
        )
        handler = self.handler
        started = time.monotonic()
        try:
            result = handler(event, context)
        finally:
            elapsed = time.monotonic() - started
            if self.report:
                self._report(context.aws_request_id, elapsed * 1000)
        if elapsed > self.spec.timeout_seconds:
            logger.warning(
                "function ran past its timeout; Lambda would have stopped it",
                function=self.spec.logical_id,
                seconds=round(elapsed, 3),
                timeout=self.spec.timeout_seconds,
            )
        return result

    def _report(self, request_id: str, duration_ms: float) -> None:
        with self._lock:
            init_ms, self._init_ms = self._init_ms, None  # Lambda reports the init once, on the cold start
        line = report_line(request_id, duration_ms, self.spec.memory_mb, init_ms)
        sys.stderr.write(f"[{self.spec.logical_id}] {line}\n")
