"""EventBridge and SNS adapters: where finished jobs are announced besides webhooks."""

from __future__ import annotations

from functools import cache
from typing import Any

from promptlab.core.errors import DependencyUnavailable
from promptlab.core.settings import Settings, get_settings


class Publishers:
    """Publishes job events; the endpoint is the same one SQS uses (moto, LocalStack or AWS)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            self._clients[service] = boto3.client(
                service,  # type: ignore[call-overload]
                region_name=self._settings.aws_region,
                endpoint_url=self._settings.aws_endpoint_url,
                config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}),
            )
        return self._clients[service]

    def put_event(self, *, bus: str, detail_type: str, detail: str) -> None:
        """One EventBridge event from source `promptlab`."""
        from botocore.exceptions import BotoCoreError, ClientError

        entry = {"Source": "promptlab", "DetailType": detail_type, "Detail": detail, "EventBusName": bus}
        try:
            answer = self._client("events").put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable("EventBridge is unreachable", details={"dependency": "events"}) from exc
        if answer.get("FailedEntryCount"):
            raise DependencyUnavailable("EventBridge refused the event", details={"dependency": "events"})

    def publish(self, *, topic_arn: str, event: str, message: str) -> None:
        """One SNS message with the event name as an attribute (for subscription filters)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client("sns").publish(
                TopicArn=topic_arn,
                Message=message,
                MessageAttributes={"event": {"DataType": "String", "StringValue": event}},
            )
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable("SNS is unreachable", details={"dependency": "sns"}) from exc


@cache
def get_publishers() -> Publishers:
    """The process-wide publishers."""
    return Publishers(get_settings())
