"""Apply the numbered SQL migrations once each, under an advisory lock."""

from __future__ import annotations

from importlib import resources

from promptlab.db.connection import open_connection

# Any constant works; it only has to be the same for every migrating process.
_LOCK_KEY = 0x70726F6D70746C62


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) of every shipped migration, in order."""
    folder = resources.files("promptlab.db") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def migrate(url: str | None = None) -> list[str]:
    """Apply pending migrations; returns the versions applied by this call."""
    applied: list[str] = []
    with open_connection(url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["version"] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode("utf-8"))
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
