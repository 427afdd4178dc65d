"""Names for the values whose shape belongs to someone else, so a signature says which kind it holds.

Rows of our own tables are typed objects (`models/`); these stay dicts on purpose.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
"""A JSON object whose keys are not ours to fix: a JSON Schema, a provider's request, a job's JSON column."""

LambdaEvent = dict[str, Any]
"""An event as Lambda hands it to a function (API Gateway proxy, SQS, schedule), or a proxy answer to it."""
