"""`GET /health`."""

from __future__ import annotations

from typing import Literal

from promptlab.models.wire import WireModel


class DependencyCheck(WireModel):
    status: Literal["ok", "unavailable"]
    latency_ms: float
    error: str | None = None


class HealthPublic(WireModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, DependencyCheck]
