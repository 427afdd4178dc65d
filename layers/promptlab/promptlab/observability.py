"""The one home of the Powertools logger (metrics and tracing join it here)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger(service="promptlab")
