"""What the operator reads: recent runs with their layers, for `dataplatform status`."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row


def recent_runs(conn: psycopg.Connection, *, limit: int = 10) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """
            select r.system_run_id, r.batch_id, r.system_id, r.source_ref, r.batch_timestamp, r.status,
                   r.started_at, r.ended_at, r.entities_succeeded, r.entities_failed, r.entities_skipped,
                   r.message, r.dagster_run_id,
                   coalesce((select string_agg(l.layer || '=' || l.status, ' ' order by l.system_layer_run_id)
                             from audit.system_layer_run l where l.system_run_id = r.system_run_id), '') as layers
            from audit.system_run r order by r.system_run_id desc limit %s
            """,
            (limit,),
        ).fetchall()
