"""The one home of the Powertools logger (metrics and tracing join it here)."""

from __future__ import annotations

import logging
from typing import cast

from aws_lambda_powertools import Logger

logger = Logger(service="promptlab")

# Powertools' batch processors type their logger as the stdlib's; ours has the same interface.
batch_logger = cast(logging.Logger, logger)
