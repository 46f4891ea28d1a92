"""The life of a batch: the one owner of `audit.system_run` and `audit.system_layer_run`.

A batch is opened when a run starts landing a delivery (or resumes one a dead run had landed), each
layer opens and closes its layer run on it, and the run closes it. A run that died leaves rows
'running'; the next run of the system marks them 'abandoned' and takes over. Writers take an open
psycopg connection so the caller decides the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from audit.events import SYSTEM_LAYER_EVENT_SQL
from secret_store.redact import redact_optional

LAYERS = ("landing", "quality", "bronze", "silver", "gold")
ABANDONED_MESSAGE = "abandoned: the run stopped before finishing (killed or crashed)"


@dataclass(frozen=True)
class SystemRun:
    system_run_id: int
    batch_id: int
    system_id: str
    source_ref: str
    batch_timestamp: dt.datetime


_RUN_COLUMNS = "r.system_run_id, r.batch_id, r.system_id, r.source_ref, r.batch_timestamp"


# ------------------------------------------------------------------------------------------- opening


def batch_id_for(conn: psycopg.Connection, system_id: str, source_ref: str) -> int:
    """The batch id of a delivery: the one it already has (a re-run of the same batch), or a new one."""
    row = conn.execute(
        "select batch_id from audit.system_run where system_id = %s and source_ref = %s order by system_run_id limit 1",
        (system_id, source_ref),
    ).fetchone()
    return int(row[0]) if row else int(conn.execute("select nextval('audit.batch_id_seq')").fetchone()[0])


def open_batch(
    conn: psycopg.Connection, *, system_id: str, source_ref: str, batch_timestamp: dt.datetime, dagster_run_id: str
) -> SystemRun:
    """A new run of the delivery's batch (a new batch id, or the delivery's own if it was loaded before)."""
    batch_id = batch_id_for(conn, system_id, source_ref)
    row = conn.execute(
        "insert into audit.system_run (batch_id, system_id, source_ref, batch_timestamp, dagster_run_id, status)"
        " values (%s, %s, %s, %s, %s, 'running') returning system_run_id",
        (batch_id, system_id, source_ref, batch_timestamp, dagster_run_id),
    ).fetchone()
    return SystemRun(int(row[0]), batch_id, system_id, source_ref, batch_timestamp)


def take_over(conn: psycopg.Connection, system_id: str, *, dagster_run_id: str) -> tuple[int, list[int]]:
    """Before a run of a system lands anything: rows other runs left 'running' become 'abandoned' (their
    process is gone), and the batches that started landing but never finished are returned, for the
    landing writer to remove their rows. Returns (runs abandoned, unlanded batch ids).

    Call it only where no other run of the system can be alive: under the system's landing lock.
    """
    return mark_abandoned(conn, system_id, current_dagster_run_id=dagster_run_id), unlanded_batches(conn, system_id)


def dead_relandings(conn: psycopg.Connection, system_id: str, *, dagster_run_id: str) -> list[tuple[int, str]]:
    """(batch id, Dagster run id) of runs another process left 'running' while re-landing a batch that had
    landed before (a forced re-land killed before it finished): their rows are removed, the batch keeps the
    rows of its earlier landing. Ask before `take_over`, which marks those runs abandoned."""
    rows = conn.execute(
        "select r.batch_id, r.dagster_run_id from audit.system_run r"
        " join audit.landed_batch b on b.system_id = r.system_id and b.batch_id = r.batch_id"
        " where r.system_id = %s and r.status = 'running' and r.dagster_run_id <> %s and not exists ("
        "  select 1 from audit.system_layer_run l where l.system_run_id = r.system_run_id"
        "  and l.layer = 'landing' and l.status = 'succeeded')",
        (system_id, dagster_run_id),
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def mark_abandoned(conn: psycopg.Connection, system_id: str, *, current_dagster_run_id: str) -> int:
    """Rows another run of the system left 'running' are 'abandoned': its process is gone."""
    runs = conn.execute(
        "update audit.system_run set status = 'abandoned', ended_at = clock_timestamp(), message = %s"
        " where status = 'running' and system_id = %s and dagster_run_id <> %s returning system_run_id",
        (ABANDONED_MESSAGE, system_id, current_dagster_run_id),
    ).fetchall()
    ids = [r[0] for r in runs]
    if ids:
        conn.execute(
            "update audit.system_layer_run set status = 'abandoned', ended_at = clock_timestamp(), message = %s"
            " where status = 'running' and system_run_id = any(%s)",
            (ABANDONED_MESSAGE, ids),
        )
    conn.execute(
        "update audit.entity_layer_run set status = 'abandoned', ended_at = clock_timestamp(), message = %s"
        " where status = 'running' and system_id = %s and dagster_run_id <> %s",
        (ABANDONED_MESSAGE, system_id, current_dagster_run_id),
    )
    return len(ids)


# ------------------------------------------------------------------------------------------- layers


def start_layer(conn: psycopg.Connection, run: SystemRun, layer: str) -> int:
    row = conn.execute(
        "insert into audit.system_layer_run (system_run_id, batch_id, layer, status) values (%s, %s, %s, 'running')"
        " on conflict (system_run_id, layer) do update set status = 'running', started_at = clock_timestamp(),"
        " ended_at = null returning system_layer_run_id",
        (run.system_run_id, run.batch_id, layer),
    ).fetchone()
    return int(row[0])


def finish_layer(conn: psycopg.Connection, layer_run_id: int, status: str, *, message: str | None = None) -> None:
    """Close a layer run; its entity counts are the statuses of its entity rows. A layer that succeeded or
    failed emits its system-layer-processed event in the same statement (audit/events.py)."""
    conn.execute(
        "with l as (update audit.system_layer_run l set status = %s, ended_at = clock_timestamp(), message = %s,"
        " entities_succeeded = (select count(*) from audit.entity_layer_run e"
        "   where e.system_layer_run_id = l.system_layer_run_id and e.status = 'succeeded'),"
        " entities_failed = (select count(*) from audit.entity_layer_run e"
        "   where e.system_layer_run_id = l.system_layer_run_id and e.status = 'failed'),"
        " entities_skipped = (select count(*) from audit.entity_layer_run e"
        "   where e.system_layer_run_id = l.system_layer_run_id and e.status = 'skipped')"
        " where system_layer_run_id = %s returning l.*) " + SYSTEM_LAYER_EVENT_SQL,
        (status, redact_optional(message), layer_run_id),
    )


# ------------------------------------------------------------------------------------------- closing


def close_batch(conn: psycopg.Connection, run: SystemRun, status: str, *, message: str | None = None) -> None:
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
        {"id": run.system_run_id, "status": status, "message": redact_optional(message)},
    )


def close_unfinished(conn: psycopg.Connection, dagster_run_id: str, *, succeeded: bool,
                     failed_steps: list[str]) -> None:
    """At the end of a Dagster run: a step that failed before dbt leaves its batch open; close it honestly."""
    for run in system_runs_of(conn, dagster_run_id, status="running"):
        close_batch(conn, run, "succeeded" if succeeded else "failed",
                    message=None if succeeded else f"failed steps: {', '.join(failed_steps) or 'none'}")


def set_cursor(conn: psycopg.Connection, system_id: str, endpoint: str, value: str, batch_id: int) -> None:
    """Where an endpoint's extraction stands; set only once its batch has landed."""
    conn.execute(
        "insert into audit.cursor (system_id, endpoint, value, batch_id) values (%s, %s, %s, %s)"
        " on conflict (system_id, endpoint) do update set value = excluded.value, batch_id = excluded.batch_id,"
        " updated_at = clock_timestamp()",
        (system_id, endpoint, value, batch_id),
    )


def record_cursors(conn: psycopg.Connection, system_id: str, batch_id: int, *, started: Mapping[str, str],
                   reached: Mapping[str, str]) -> None:
    """Once a batch has landed (call it inside the transaction that finishes its landing layer): per endpoint
    reading got to, the batch's range in `audit.batch_cursor` (a re-land replaces it) and the endpoint's
    `audit.cursor`. A re-land of an earlier batch does not move back the cursor a later batch has set."""
    for endpoint, value in reached.items():
        conn.execute(
            "insert into audit.batch_cursor (system_id, batch_id, endpoint, start_value, end_value)"
            " values (%s, %s, %s, %s, %s) on conflict (system_id, batch_id, endpoint) do update"
            " set start_value = excluded.start_value, end_value = excluded.end_value",
            (system_id, batch_id, endpoint, started.get(endpoint), value),
        )
        current = conn.execute("select batch_id from audit.cursor where system_id = %s and endpoint = %s",
                               (system_id, endpoint)).fetchone()
        if current is None or int(current[0]) <= batch_id:
            set_cursor(conn, system_id, endpoint, value, batch_id)


def forget_cursor(conn: psycopg.Connection, system_id: str, endpoint: str) -> str | None:
    """The operator's reset of an endpoint (`dataplatform cdc drop-slot`): its next batch reads from the beginning
    (a CDC endpoint: a new snapshot). `audit.batch_cursor` keeps the landed batches' ranges. Returns the value
    that was stored."""
    row = conn.execute("delete from audit.cursor where system_id = %s and endpoint = %s returning value",
                       (system_id, endpoint)).fetchone()
    return None if row is None else str(row[0])


def cursors(conn: psycopg.Connection, system_id: str) -> dict[str, str]:
    """Where each endpoint of a system stands (`audit.cursor`): what its next load reads from."""
    rows = conn.execute("select endpoint, value from audit.cursor where system_id = %s", (system_id,)).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def batch_start_cursors(conn: psycopg.Connection, system_id: str, batch_id: int) -> dict[str, str]:
    """Where a landed batch started reading, per endpoint (what a forced re-land of it reads from again);
    an endpoint that read from the beginning is absent."""
    rows = conn.execute(
        "select endpoint, start_value from audit.batch_cursor"
        " where system_id = %s and batch_id = %s and start_value is not null",
        (system_id, batch_id),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


# ------------------------------------------------------------------------------------------- questions


def system_runs_of(conn: psycopg.Connection, dagster_run_id: str, *, status: str | None = None) -> list[SystemRun]:
    """The system runs (batches) a Dagster run is working on, optionally only those in `status`."""
    rows = conn.execute(
        f"select {_RUN_COLUMNS} from audit.system_run r"
        " where r.dagster_run_id = %s and r.status = coalesce(%s, r.status) order by r.system_run_id",
        (dagster_run_id, status),
    ).fetchall()
    return [SystemRun(*row) for row in rows]


def system_run_status(conn: psycopg.Connection, run: SystemRun) -> str:
    row = conn.execute("select status from audit.system_run where system_run_id = %s", (run.system_run_id,)).fetchone()
    return str(row[0])


def system_of_batch(conn: psycopg.Connection, batch_id: int) -> str | None:
    row = conn.execute("select system_id from audit.system_run where batch_id = %s limit 1", (batch_id,)).fetchone()
    return row[0] if row else None


def unlanded_batches(conn: psycopg.Connection, system_id: str) -> list[int]:
    """Batches of a system that started landing but never finished it (a crash, a kill, an error)."""
    rows = conn.execute(
        "select distinct r.batch_id from audit.system_run r where r.system_id = %s and not exists ("
        " select 1 from audit.landed_batch b where b.system_id = r.system_id and b.batch_id = r.batch_id)",
        (system_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def landed_refs(conn: psycopg.Connection, system_id: str) -> set[str]:
    """Deliveries (source refs) of a system that landed successfully at least once."""
    rows = conn.execute("select source_ref from audit.landed_batch where system_id = %s", (system_id,)).fetchall()
    return {r[0] for r in rows}


def last_landed(conn: psycopg.Connection, system_id: str) -> SystemRun | None:
    """The most recently landed batch of a system (what --force runs again)."""
    row = conn.execute(
        f"select {_RUN_COLUMNS} from audit.landed_batch b"
        " join audit.system_run r on r.system_id = b.system_id and r.batch_id = b.batch_id"
        " where b.system_id = %s order by b.landed_at desc, r.system_run_id desc limit 1",
        (system_id,),
    ).fetchone()
    return SystemRun(*row) if row else None


def batch_to_resume(conn: psycopg.Connection, system_id: str) -> SystemRun | None:
    """A batch that landed but whose last run was abandoned before it finished: the next run resumes it."""
    row = conn.execute(
        f"""
        select {_RUN_COLUMNS}
        from audit.system_run r
        join audit.landed_batch b on b.system_id = r.system_id and b.batch_id = r.batch_id
        where r.system_id = %s
          and r.system_run_id = (select max(system_run_id) from audit.system_run r2 where r2.batch_id = r.batch_id)
          and r.status = 'abandoned'
        order by r.batch_timestamp, r.batch_id limit 1
        """,
        (system_id,),
    ).fetchone()
    return SystemRun(*row) if row else None
