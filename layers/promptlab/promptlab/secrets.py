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


def provider_key(provider: str) -> str | None:
    """A provider's API key: the environment locally, SSM Parameter Store (cached 5 min) in AWS."""
    settings = get_settings()
    if provider == "anthropic":
        key, parameter = settings.anthropic_api_key, settings.anthropic_api_key_parameter
    elif provider == "openai":
        key, parameter = settings.openai_api_key, settings.openai_api_key_parameter
    elif provider == "openai-compatible":
        return settings.openai_compatible_api_key or "not-needed"
    else:
        return None
    if key:
        return key
    if settings.mode == "aws" and parameter:
        return _from_ssm(parameter)
    return None
