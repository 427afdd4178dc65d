"""Postgres adapter: connections, migrations, and the repositories that own every SQL statement."""
