"""Answering a CloudFormation custom resource: one PUT of the outcome to the request's pre-signed URL.

CloudFormation waits (up to an hour) for this answer, so it is always sent, even when the work failed;
a failure to send is logged, never raised (the handler has nothing better to do with it).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any, Literal

from promptlab.core.observability import logger

Status = Literal["SUCCESS", "FAILED"]


def send(
    event: Mapping[str, Any],
    *,
    status: Status,
    physical_id: str,
    reason: str = "",
    data: Mapping[str, str] | None = None,
) -> bool:
    """PUT the outcome to `event["ResponseURL"]`; True when CloudFormation's store took it."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000] or status,
            "PhysicalResourceId": physical_id,
            "StackId": event.get("StackId"),
            "RequestId": event.get("RequestId"),
            "LogicalResourceId": event.get("LogicalResourceId"),
            "Data": dict(data or {}),
        }
    ).encode()
    request = urllib.request.Request(
        str(event["ResponseURL"]),
        data=body,
        method="PUT",
        headers={"Content-Type": ""},  # as pre-signed
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - CloudFormation's URL
            return bool(200 <= answer.status < 300)
    except OSError as exc:
        logger.error("custom resource answer not delivered", error=type(exc).__name__, status=status)
        return False
