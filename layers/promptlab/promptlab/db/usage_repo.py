"""The SQL of usage and cost reports: one aggregate over a tenant's jobs."""

from __future__ import annotations

from datetime import datetime

from promptlab.core.json_types import JsonObject
from promptlab.db.connection import Connection

# groupBy → the SQL expression of the group's key (a fixed list: nothing from the request reaches SQL).
GROUP_KEYS = {
    "day": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "provider": "provider",
    "model": "provider || ':' || model",
    "template": "template_id",
    "experiment": "coalesce(experiment_id, '-')",
    "batch": "coalesce(openai_batch_id, '-')",
}

_MEASURES = """
    count(*) AS requests,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE cache_hit) AS cache_hits,
    coalesce(sum(input_tokens) FILTER (WHERE NOT cache_hit), 0) AS input_tokens,
    coalesce(sum(output_tokens) FILTER (WHERE NOT cache_hit), 0) AS output_tokens,
    coalesce(sum(total_tokens) FILTER (WHERE NOT cache_hit), 0) AS total_tokens,
    coalesce(sum(estimated_cost_usd), 0) AS cost_usd,
    coalesce(sum(saved_cost_usd) FILTER (WHERE cache_hit), 0) AS saved_usd,
    coalesce(sum(saved_cost_usd) FILTER (WHERE lane = 'economy' AND NOT cache_hit), 0) AS batch_saved_usd,
    round(avg(provider_latency_ms) FILTER (WHERE NOT cache_hit))::integer AS avg_latency_ms
"""


def usage(
    conn: Connection, *, tenant_id: str, start: datetime, end: datetime, group_by: str
) -> tuple[list[JsonObject], JsonObject]:
    """Rows per group (ordered by key) and the totals, for jobs created in [start, end)."""
    where = "FROM jobs WHERE tenant_id = %s AND created_at >= %s AND created_at < %s"
    params = (tenant_id, start, end)
    key = GROUP_KEYS[group_by]
    rows = conn.execute(f"SELECT {key} AS key, {_MEASURES} {where} GROUP BY 1 ORDER BY 1".encode(), params).fetchall()
    totals = conn.execute(f"SELECT 'total' AS key, {_MEASURES} {where}".encode(), params).fetchone()
    assert totals is not None
    return rows, totals
