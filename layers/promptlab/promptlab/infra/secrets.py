"""Secrets: from the environment in local mode, from SSM Parameter Store / Secrets Manager (cached) in AWS."""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit, urlunsplit

from promptlab.core.settings import get_settings


def _from_secrets_manager(arn: str) -> str:
    from aws_lambda_powertools.utilities.parameters import get_secret

    value = get_secret(arn, max_age=300)
    return value if isinstance(value, str) else value.decode()


def with_secret(url: str, secret_arn: str | None) -> str:
    """`url` with the credentials of a Secrets Manager secret: a plain password, or RDS's JSON
    (`username`, `password`, and optionally `host`, `port`, `dbname`). Unchanged without a secret."""
    if not secret_arn:
        return url
    raw = _from_secrets_manager(secret_arn)
    try:
        fields = json.loads(raw)
    except ValueError:
        fields = {"password": raw}
    if not isinstance(fields, dict):
        fields = {"password": raw}
    parts = urlsplit(url)
    user = fields.get("username") or parts.username or ""
    host = str(fields.get("host") or parts.hostname or "")
    port = fields.get("port") or parts.port
    netloc = quote(str(user), safe="")
    if fields.get("password") is not None:
        netloc += ":" + quote(str(fields["password"]), safe="")
    netloc = f"{netloc}@{host}" if netloc else host
    if port:
        netloc += f":{port}"
    path = f"/{fields['dbname']}" if fields.get("dbname") else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


def _from_ssm(name: str) -> str:
    from aws_lambda_powertools.utilities.parameters import get_parameter

    value: str = get_parameter(name, decrypt=True, max_age=300)
    return value


def secret(value: str | None, parameter: str | None) -> str | None:
    """A secret given directly (the environment, locally), else read from SSM by name in AWS mode (cached 5 min)."""
    if value:
        return value
    if get_settings().mode == "aws" and parameter:
        return _from_ssm(parameter)
    return None


def secret_value(arn: str) -> str:
    """A Secrets Manager secret's string (cached 5 min)."""
    return _from_secrets_manager(arn)
