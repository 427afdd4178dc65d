"""The first API key of a deployed stack: its value lives in a Secrets Manager secret the stack generates,
so a newcomer can call the API without reaching the private database (`aws secretsmanager get-secret-value`).
"""

from __future__ import annotations

from promptlab.db import keys_repo
from promptlab.db.connection import connection
from promptlab.infra.secrets import secret_value
from promptlab.tenancy.auth import DEFAULT_TENANT, create_key, hash_key

FIRST_KEY_NAME = "first-key"


def ensure_first_key(secret_arn: str) -> bool:
    """Store the secret's value as a key of the default tenant unless it is known; True when made now."""
    value = secret_value(secret_arn).strip()
    with connection() as conn:
        if keys_repo.key_state(conn, key_hash=hash_key(value)) != "unknown":
            return False
    create_key(name=FIRST_KEY_NAME, tenant_id=DEFAULT_TENANT, key=value)
    return True
