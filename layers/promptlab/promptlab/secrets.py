"""Secrets: from the environment in local mode, from SSM Parameter Store (cached) in AWS."""

from __future__ import annotations

from promptlab.settings import get_settings


def _from_ssm(name: str) -> str:
    from aws_lambda_powertools.utilities.parameters import get_parameter

    value: str = get_parameter(name, decrypt=True, max_age=300)
    return value


def webhook_secret() -> str | None:
    """The key that signs webhooks, or None when webhooks go unsigned."""
    settings = get_settings()
    if settings.webhook_secret:
        return settings.webhook_secret
    if settings.mode == "aws" and settings.webhook_secret_parameter:
        return _from_ssm(settings.webhook_secret_parameter)
    return None
