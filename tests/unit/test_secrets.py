"""Credentials in AWS come from Secrets Manager, passed by name."""

from __future__ import annotations

import pytest


def test_database_credentials_come_from_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptlab.infra import secrets

    rds = '{"username": "app", "password": "p@ss:w/rd", "host": "db.internal", "port": 5432, "dbname": "promptlab"}'
    monkeypatch.setattr(secrets, "_from_secrets_manager", lambda _arn: rds)
    url = secrets.with_secret("postgresql://placeholder@localhost/x?sslmode=require", "arn:aws:secretsmanager:db")
    assert url == "postgresql://app:p%40ss%3Aw%2Frd@db.internal:5432/promptlab?sslmode=require"
    monkeypatch.setattr(secrets, "_from_secrets_manager", lambda _arn: "token-only")
    assert (
        secrets.with_secret("rediss://cache.internal:6379/0", "arn:redis")
        == "rediss://:token-only@cache.internal:6379/0"
    )
    assert secrets.with_secret("redis://h:6379/0", None) == "redis://h:6379/0"
