"""What each layer did to each entity of a batch: `audit.entity_layer_run` (silver's rows are written
by its dbt materialization, inside its transaction, and adopted by their layer run afterwards).

Every count written here is measured in the database, never estimated.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from audit.batches import SystemRun
from secret_store.redact import redact_optional


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
         records_in, inserted, updated, deleted, dagster_run_id, redact_optional(message)),
    )


def adopt_entity_rows(conn: psycopg.Connection, layer_run_id: int, run: SystemRun, layer: str,
                      dagster_run_id: str) -> None:
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


def gate_results(conn: psycopg.Connection, run: SystemRun) -> dict[str, str]:
    """The quality gate's latest word on each entity of a batch (the contract bronze and silver follow)."""
    rows = conn.execute(
        "select entity, status from audit.latest_gate_result where batch_id = %s and system_id = %s",
        (run.batch_id, run.system_id),
    ).fetchall()
    return {entity: status for entity, status in rows}


def failed_entities(conn: psycopg.Connection, dagster_run_id: str) -> list[tuple[str, str, str | None]]:
    """(layer, entity, message) of every entity step that failed in a Dagster run."""
    return conn.execute(
        "select layer, entity, message from audit.entity_layer_run where dagster_run_id = %s and status = 'failed'"
        " order by entity_layer_run_id",
        (dagster_run_id,),
    ).fetchall()


def failed_entity_batches(conn: psycopg.Connection, dagster_run_id: str) -> list[tuple[str, str, int, str, str | None]]:
    """(system, entity, batch, layer, message) of every entity step that failed in a Dagster run, in order."""
    return conn.execute(
        "select system_id, entity, batch_id, layer, message from audit.entity_layer_run"
        " where dagster_run_id = %s and status = 'failed' order by entity_layer_run_id",
        (dagster_run_id,),
    ).fetchall()


def unapplied_gate_failures(conn: psycopg.Connection, system_id: str) -> dict[str, tuple[int, str | None]]:
    """entity -> (batch, message) of each entity whose latest failed gate result is of a batch that silver has
    not applied since: the gate's failure stands until that batch is applied (or skipped, which records it)."""
    rows = conn.execute(
        "select distinct on (g.entity) g.entity, g.batch_id, g.message from audit.latest_gate_result as g"
        " where g.system_id = %s and g.status = 'failed' and not exists ("
        "   select 1 from audit.silver_applied_batch as s where s.system_id = g.system_id and s.entity = g.entity"
        "   and s.batch_id = g.batch_id and s.entity_layer_run_id > g.entity_layer_run_id)"
        " order by g.entity, g.entity_layer_run_id desc",
        (system_id,),
    ).fetchall()
    return {entity: (int(batch), message) for entity, batch, message in rows}


def notes(conn: psycopg.Connection, dagster_run_id: str) -> list[tuple[str, str, str]]:
    """(layer, entity, message) of entity steps that went through with something to say (new fields...)."""
    return conn.execute(
        "select layer, entity, message from audit.entity_layer_run where dagster_run_id = %s"
        " and status = 'succeeded' and message is not null order by entity_layer_run_id",
        (dagster_run_id,),
    ).fetchall()


Counts = tuple[int, int, int, int]  # records in, inserted, updated, deleted


def layer_counts(conn: psycopg.Connection, batch_id: int, dagster_run_id: str) -> dict[tuple[str, str], Counts]:
    """(layer, entity) -> (records in, inserted, updated, deleted) of one batch in one Dagster run."""
    rows = conn.execute(
        "select layer, entity, records_in, inserted, updated, deleted from audit.entity_layer_run"
        " where batch_id = %s and dagster_run_id = %s", (batch_id, dagster_run_id)).fetchall()
    return {(layer, entity): (int(a), int(b), int(c), int(d)) for layer, entity, a, b, c, d in rows}
