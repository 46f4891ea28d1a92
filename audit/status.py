"""What the operator reads: recent runs with their layers, for `dataplatform status` and the operator's API."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


def recent_runs(conn: psycopg.Connection, *, limit: int = 10, system_id: str | None = None,
                dagster_run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """The newest batches (audit.system_run rows with their layers), newest first: of every system, of one
    (`system_id`), or of the given Dagster runs (`dagster_run_ids`: all of their batches, `limit` aside)."""
    where, params = [], []
    if system_id is not None:
        where.append(sql.SQL("r.system_id = %s"))
        params.append(system_id)
    if dagster_run_ids is not None:
        where.append(sql.SQL("r.dagster_run_id = any(%s)"))
        params.append(dagster_run_ids)
    query = sql.SQL(
        """
        select r.system_run_id, r.batch_id, r.system_id, r.source_ref, r.batch_timestamp, r.status,
               r.started_at, r.ended_at, r.entities_succeeded, r.entities_failed, r.entities_skipped,
               r.message, r.dagster_run_id,
               coalesce((select string_agg(l.layer || '=' || l.status, ' ' order by l.system_layer_run_id)
                         from audit.system_layer_run l where l.system_run_id = r.system_run_id), '') as layers
        from audit.system_run r {where} order by r.system_run_id desc {limit}
        """
    ).format(where=sql.SQL("where ") + sql.SQL(" and ").join(where) if where else sql.SQL(""),
             limit=sql.SQL("") if dagster_run_ids is not None else sql.SQL("limit {}").format(sql.Literal(limit)))
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()
