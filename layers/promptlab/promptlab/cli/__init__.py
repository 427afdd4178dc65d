"""`promptlab`: the command line (local stack, invoke, migrate, keys, generate, OpenAPI)."""
