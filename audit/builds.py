"""The dbt builds the dbt step ran (`audit.transform_build`), and whether a run has anything for dbt to do.

A run that landed nothing would otherwise pay a whole `dbt build` (dbt's start-up, every model's
transaction, every test) to change nothing. It may skip it only when all of these hold, each asked of
the warehouse, not of this process:
- the last build was clean (every selected model built, every test passed), so gold is not stale;
- it built the same dbt project (same hash of models, macros and tests), so no model is new or changed;
- no entity it builds has a batch waiting for silver (`pending_entity_batches`);
- every table it builds exists (`missing_relations`: one dropped by hand is built again).
"""

from __future__ import annotations

import psycopg


def start_build(conn: psycopg.Connection, *, dagster_run_id: str, project_hash: str) -> int:
    """A build about to start counts as not clean until it has finished clean: one that dies midway (after
    silver, before gold) leaves gold stale, and the next run must build."""
    return conn.execute(
        "insert into audit.transform_build (dagster_run_id, project_hash, clean) values (%s, %s, false)"
        " returning transform_build_id",
        (dagster_run_id, project_hash),
    ).fetchone()[0]


def finish_build(conn: psycopg.Connection, build_id: int, *, clean: bool) -> None:
    conn.execute("update audit.transform_build set clean = %s, built_at = clock_timestamp()"
                 " where transform_build_id = %s", (clean, build_id))


def last_build_was_clean(conn: psycopg.Connection, project_hash: str) -> bool:
    """Whether the latest dbt build was clean and of this project."""
    row = conn.execute(
        "select project_hash, clean from audit.transform_build order by transform_build_id desc limit 1"
    ).fetchone()
    return row is not None and row[1] and row[0] == project_hash


def pending_entity_batches(conn: psycopg.Connection, entities: list[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """(system, entity, batch) of every batch the silver materialization would apply now for these
    (system, entity) pairs: landed, not applied, not stopped by the quality gate (its latest word), not
    held back (audit.entity_batch_held); and of every applied batch landed again since silver applied it.
    The same question as the `pending` and `relanded` statements of scd2_history (dbt_project/macros/silver.sql),
    asked of the same audit views."""
    if not entities:
        return []
    return [(s, e, int(b)) for s, e, b in conn.execute(
        "with wanted (system_id, entity) as (select * from unnest(%s::text[], %s::text[]))"
        " select w.system_id, w.entity, l.batch_id from wanted as w"
        " join audit.landed_batch as l on l.system_id = w.system_id"
        " where not exists (select 1 from audit.silver_applied_batch as a"
        "                   where a.system_id = w.system_id and a.entity = w.entity and a.batch_id = l.batch_id)"
        "   and not exists (select 1 from audit.latest_gate_result as g where g.system_id = w.system_id"
        "                   and g.entity = w.entity and g.batch_id = l.batch_id and g.status = 'failed')"
        "   and not exists (select 1 from audit.entity_batch_held as h where h.system_id = w.system_id"
        "                   and h.entity = w.entity and h.batch_id = l.batch_id)"
        " union all"
        " select w.system_id, w.entity, a.batch_id from wanted as w"
        " join audit.silver_applied_batch as a on a.system_id = w.system_id and a.entity = w.entity"
        " join audit.landed_batch as l on l.system_id = a.system_id and l.batch_id = a.batch_id"
        " where l.landed_at > (select max(x.ended_at) from audit.entity_layer_run as x"
        "                      where x.system_id = a.system_id and x.entity = a.entity and x.batch_id = a.batch_id"
        "                        and x.layer = 'silver' and x.status in ('succeeded', 'skipped'))"
        " order by 1, 2, 3",
        ([s for s, _ in entities], [e for _, e in entities]),
    ).fetchall()]


def missing_relations(conn: psycopg.Connection, relations: list[str]) -> list[str]:
    """Those of the `schema.table` names that do not exist in the warehouse."""
    if not relations:
        return []
    return [str(name) for (name,) in conn.execute(
        "select r.name from unnest(%s::text[]) as r (name)"
        " where to_regclass(format('%%I.%%I', split_part(r.name, '.', 1), split_part(r.name, '.', 2))) is null",
        (relations,)).fetchall()]
