"""Reading and writing the audit tables (schema in migrations/): one function per thing that happens.

Writers take an open psycopg connection so the caller decides the transaction; every count written
here is measured in the database, never estimated.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

LAYERS = ("landing", "quality", "bronze", "silver", "gold")


@dataclass(frozen=True)
class SystemRun:
    system_run_id: int
    batch_id: int
    system_id: str
    source_ref: str
    batch_timestamp: dt.datetime


def batch_id_for(conn: psycopg.Connection, system_id: str, source_ref: str) -> int:
    """The batch id of a delivery: the one it already has (a re-run of the same batch), or a new one."""
    row = conn.execute(
        "select batch_id from audit.system_run where system_id = %s and source_ref = %s order by system_run_id limit 1",
        (system_id, source_ref),
    ).fetchone()
    return int(row[0]) if row else int(conn.execute("select nextval('audit.batch_id_seq')").fetchone()[0])


def start_system_run(
    conn: psycopg.Connection, *, system_id: str, source_ref: str, batch_timestamp: dt.datetime, dagster_run_id: str
) -> SystemRun:
    batch_id = batch_id_for(conn, system_id, source_ref)
    row = conn.execute(
        "insert into audit.system_run (batch_id, system_id, source_ref, batch_timestamp, dagster_run_id, status)"
        " values (%s, %s, %s, %s, %s, 'running') returning system_run_id",
        (batch_id, system_id, source_ref, batch_timestamp, dagster_run_id),
    ).fetchone()
    return SystemRun(int(row[0]), batch_id, system_id, source_ref, batch_timestamp)


def system_runs_of(conn: psycopg.Connection, dagster_run_id: str, *, status: str | None = None) -> list[SystemRun]:
    """The system runs (batches) a Dagster run is working on, optionally only those in `status`."""
    rows = conn.execute(
        "select system_run_id, batch_id, system_id, source_ref, batch_timestamp from audit.system_run"
        " where dagster_run_id = %s and status = coalesce(%s, status) order by system_run_id",
        (dagster_run_id, status),
    ).fetchall()
    return [SystemRun(*row) for row in rows]


def start_layer(conn: psycopg.Connection, run: SystemRun, layer: str) -> int:
    row = conn.execute(
        "insert into audit.system_layer_run (system_run_id, batch_id, layer, status) values (%s, %s, %s, 'running')"
        " on conflict (system_run_id, layer) do update set status = 'running', started_at = clock_timestamp(),"
        " ended_at = null returning system_layer_run_id",
        (run.system_run_id, run.batch_id, layer),
    ).fetchone()
    return int(row[0])


def finish_layer(conn: psycopg.Connection, layer_run_id: int, status: str, *, message: str | None = None) -> None:
    """Close a layer run; its entity counts are the statuses of its entity rows."""
    conn.execute(
        "update audit.system_layer_run l set status = %s, ended_at = clock_timestamp(), message = %s,"
        " entities_succeeded = (select count(*) from audit.entity_layer_run e"
        "   where e.system_layer_run_id = l.system_layer_run_id and e.status = 'succeeded'),"
        " entities_failed = (select count(*) from audit.entity_layer_run e"
        "   where e.system_layer_run_id = l.system_layer_run_id and e.status = 'failed'),"
        " entities_skipped = (select count(*) from audit.entity_layer_run e"
        "   where e.system_layer_run_id = l.system_layer_run_id and e.status = 'skipped')"
        " where system_layer_run_id = %s",
        (status, message, layer_run_id),
    )


def record_entity(
    conn: psycopg.Connection,
    *,
    layer_run_id: int | None,
    run: SystemRun,
    entity: str,
    layer: str,
    status: str,
    dagster_run_id: str,
    started_at: dt.datetime | None = None,
    records_in: int = 0,
    inserted: int = 0,
    updated: int = 0,
    deleted: int = 0,
    message: str | None = None,
) -> None:
    conn.execute(
        "insert into audit.entity_layer_run (system_layer_run_id, batch_id, batch_timestamp, system_id, entity, layer,"
        " status, started_at, ended_at, records_in, inserted, updated, deleted, dagster_run_id, message)"
        " values (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, clock_timestamp()), clock_timestamp(),"
        " %s, %s, %s, %s, %s, %s)",
        (layer_run_id, run.batch_id, run.batch_timestamp, run.system_id, entity, layer, status, started_at,
         records_in, inserted, updated, deleted, dagster_run_id, message),
    )


def adopt_entity_rows(conn: psycopg.Connection, layer_run_id: int, run: SystemRun, layer: str, dagster_run_id: str) -> None:
    """Link entity rows written inside dbt (the silver materialization) to their layer run."""
    conn.execute(
        "update audit.entity_layer_run set system_layer_run_id = %s where system_layer_run_id is null"
        " and dagster_run_id = %s and layer = %s and system_id = %s",
        (layer_run_id, dagster_run_id, layer, run.system_id),
    )


def has_entity_row(conn: psycopg.Connection, run: SystemRun, entity: str, layer: str, dagster_run_id: str) -> bool:
    return conn.execute(
        "select exists (select 1 from audit.entity_layer_run where batch_id = %s and system_id = %s and entity = %s"
        " and layer = %s and dagster_run_id = %s)",
        (run.batch_id, run.system_id, entity, layer, dagster_run_id),
    ).fetchone()[0]


def quality_statuses(conn: psycopg.Connection, run: SystemRun) -> dict[str, str]:
    """The quality gate's latest word on each entity of a batch (the contract bronze and silver follow)."""
    rows = conn.execute(
        "select distinct on (entity) entity, status from audit.entity_layer_run"
        " where batch_id = %s and system_id = %s and layer = 'quality' order by entity, entity_layer_run_id desc",
        (run.batch_id, run.system_id),
    ).fetchall()
    return {entity: status for entity, status in rows}


def finish_system_run(conn: psycopg.Connection, run: SystemRun, status: str, *, message: str | None = None) -> None:
    """Close a system run; an entity failed if any of its layers failed in this run."""
    conn.execute(
        """
        with entity_status as (
            select e.entity, bool_or(e.status = 'failed') as failed, bool_and(e.status = 'skipped') as skipped
            from audit.entity_layer_run e join audit.system_layer_run l using (system_layer_run_id)
            where l.system_run_id = %(id)s and e.layer <> 'landing'
            group by e.entity
        )
        update audit.system_run set status = %(status)s, ended_at = clock_timestamp(), message = %(message)s,
            entities_failed = (select count(*) from entity_status where failed),
            entities_skipped = (select count(*) from entity_status where skipped and not failed),
            entities_succeeded = (select count(*) from entity_status where not failed and not skipped)
        where system_run_id = %(id)s
        """,
        {"id": run.system_run_id, "status": status, "message": message},
    )


def system_run_status(conn: psycopg.Connection, run: SystemRun) -> str:
    return conn.execute("select status from audit.system_run where system_run_id = %s", (run.system_run_id,)).fetchone()[0]


def failed_entities(conn: psycopg.Connection, dagster_run_id: str) -> list[tuple[str, str, str | None]]:
    """(layer, entity, message) of every entity step that failed in a Dagster run."""
    return conn.execute(
        "select layer, entity, message from audit.entity_layer_run where dagster_run_id = %s and status = 'failed'"
        " order by entity_layer_run_id",
        (dagster_run_id,),
    ).fetchall()


def notes(conn: psycopg.Connection, dagster_run_id: str) -> list[tuple[str, str, str]]:
    """(layer, entity, message) of entity steps that went through with something to say (new fields...)."""
    return conn.execute(
        "select layer, entity, message from audit.entity_layer_run where dagster_run_id = %s"
        " and status = 'succeeded' and message is not null order by entity_layer_run_id",
        (dagster_run_id,),
    ).fetchall()


def unlanded_batches(conn: psycopg.Connection, system_id: str) -> list[int]:
    """Batches of a system that started landing but never finished it (a crash, a kill, an error)."""
    rows = conn.execute(
        "select distinct r.batch_id from audit.system_run r where r.system_id = %s and not exists ("
        " select 1 from audit.system_layer_run l join audit.system_run r2 using (system_run_id)"
        " where r2.batch_id = r.batch_id and l.layer = 'landing' and l.status = 'succeeded')",
        (system_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def mark_abandoned(conn: psycopg.Connection, system_id: str, *, current_dagster_run_id: str) -> int:
    """Rows another run of the system left 'running' are 'abandoned': its process is gone.

    Call it only where no other run of the system can be alive: under the run lock the CLI takes for a
    job (pipeline.run_job), or in the Dagster UI where the run queue runs one job per system at a time.
    """
    message = "abandoned: the run stopped before finishing (killed or crashed)"
    runs = conn.execute(
        "update audit.system_run set status = 'abandoned', ended_at = clock_timestamp(), message = %s"
        " where status = 'running' and system_id = %s and dagster_run_id <> %s returning system_run_id",
        (message, system_id, current_dagster_run_id),
    ).fetchall()
    ids = [r[0] for r in runs]
    if ids:
        conn.execute(
            "update audit.system_layer_run set status = 'abandoned', ended_at = clock_timestamp(), message = %s"
            " where status = 'running' and system_run_id = any(%s)",
            (message, ids),
        )
    conn.execute(
        "update audit.entity_layer_run set status = 'abandoned', ended_at = clock_timestamp(), message = %s"
        " where status = 'running' and system_id = %s and dagster_run_id <> %s",
        (message, system_id, current_dagster_run_id),
    )
    return len(ids)


def landed_refs(conn: psycopg.Connection, system_id: str) -> set[str]:
    """Deliveries (source refs) of a system that landed successfully at least once."""
    rows = conn.execute(
        "select distinct r.source_ref from audit.system_run r join audit.system_layer_run l using (system_run_id)"
        " where r.system_id = %s and l.layer = 'landing' and l.status = 'succeeded'",
        (system_id,),
    ).fetchall()
    return {r[0] for r in rows}


def last_landed(conn: psycopg.Connection, system_id: str) -> SystemRun | None:
    """The most recently landed batch of a system (what --force runs again)."""
    row = conn.execute(
        "select r.system_run_id, r.batch_id, r.system_id, r.source_ref, r.batch_timestamp"
        " from audit.system_run r join audit.system_layer_run l using (system_run_id)"
        " where r.system_id = %s and l.layer = 'landing' and l.status = 'succeeded'"
        " order by l.ended_at desc limit 1",
        (system_id,),
    ).fetchone()
    return SystemRun(*row) if row else None


def batch_to_resume(conn: psycopg.Connection, system_id: str) -> SystemRun | None:
    """A batch that landed but whose last run was abandoned before it finished: the next run resumes it."""
    row = conn.execute(
        """
        select r.system_run_id, r.batch_id, r.system_id, r.source_ref, r.batch_timestamp
        from audit.system_run r
        where r.system_id = %s
          and r.system_run_id = (select max(system_run_id) from audit.system_run r2 where r2.batch_id = r.batch_id)
          and r.status = 'abandoned'
          and exists (select 1 from audit.system_layer_run l join audit.system_run r3 using (system_run_id)
                      where r3.batch_id = r.batch_id and l.layer = 'landing' and l.status = 'succeeded')
        order by r.batch_timestamp, r.batch_id limit 1
        """,
        (system_id,),
    ).fetchone()
    return SystemRun(*row) if row else None


def set_cursor(conn: psycopg.Connection, system_id: str, endpoint: str, value: str, batch_id: int) -> None:
    conn.execute(
        "insert into audit.cursor (system_id, endpoint, value, batch_id) values (%s, %s, %s, %s)"
        " on conflict (system_id, endpoint) do update set value = excluded.value, batch_id = excluded.batch_id,"
        " updated_at = clock_timestamp()",
        (system_id, endpoint, value, batch_id),
    )


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
