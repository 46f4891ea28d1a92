"""What each layer did to each entity of a batch: `audit.entity_layer_run` (silver's rows are written
by its dbt materialization, inside its transaction, and adopted by their layer run afterwards).

Every count written here is measured in the database, never estimated.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import sql

from audit.batches import SystemRun
from audit.events import ENTITY_LAYER_EVENT_SQL
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
    """One entity's row of a layer; a row that succeeded or failed emits its entity-layer-processed event in the
    same statement (audit/events.py)."""
    conn.execute(
        "with e as (insert into audit.entity_layer_run (system_layer_run_id, batch_id, batch_timestamp, system_id,"
        " entity, layer, status, started_at, ended_at, records_in, inserted, updated, deleted, dagster_run_id,"
        " message) values (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, clock_timestamp()), clock_timestamp(),"
        " %s, %s, %s, %s, %s, %s) returning *) " + ENTITY_LAYER_EVENT_SQL,
        (layer_run_id, run.batch_id, run.batch_timestamp, run.system_id, entity, layer, status, started_at,
         records_in, inserted, updated, deleted, dagster_run_id, redact_optional(message)),
    )


def adopt_entity_rows(conn: psycopg.Connection, layer_run_id: int, run: SystemRun, layer: str,
                      dagster_run_id: str) -> None:
    """Link entity rows written inside dbt (the silver materialization) to their layer run; each emits its
    entity-layer-processed event then, in the same statement (the materialization knows no layer run)."""
    conn.execute(
        "with e as (update audit.entity_layer_run set system_layer_run_id = %s where system_layer_run_id is null"
        " and dagster_run_id = %s and layer = %s and system_id = %s returning *) " + ENTITY_LAYER_EVENT_SQL,
        (layer_run_id, dagster_run_id, layer, run.system_id),
    )


def has_entity_row(conn: psycopg.Connection, run: SystemRun, entity: str, layer: str, dagster_run_id: str) -> bool:
    return conn.execute(
        "select exists (select 1 from audit.entity_layer_run where batch_id = %s and system_id = %s and entity = %s"
        " and layer = %s and dagster_run_id = %s)",
        (run.batch_id, run.system_id, entity, layer, dagster_run_id),
    ).fetchone()[0]


def silver_applied_in_run(conn: psycopg.Connection, dagster_run_id: str) -> set[tuple[str, str]]:
    """(system, entity) of every entity whose silver applied a batch in this Dagster run."""
    return {(str(s), str(e)) for s, e in conn.execute(
        "select distinct system_id, entity from audit.entity_layer_run"
        " where layer = 'silver' and status = 'succeeded' and dagster_run_id = %s", (dagster_run_id,)).fetchall()}


def gate_results(conn: psycopg.Connection, run: SystemRun) -> dict[str, str]:
    """The quality gate's latest word on each entity of a batch (the contract bronze and silver follow)."""
    rows = conn.execute(
        "select entity, status from audit.latest_gate_result where batch_id = %s and system_id = %s",
        (run.batch_id, run.system_id),
    ).fetchall()
    return {entity: status for entity, status in rows}


def fix_hint(entity: str, batch_id: int) -> str:
    """What the operator can do about a batch that failed in bronze or silver for an entity."""
    return (f"fix the delivery and land it again with `dataplatform run --force --batch {batch_id}` (it is then"
            " built again),"
            f" or skip it for good with `dataplatform skip --entity {entity} --batch {batch_id}`")


def held_batch(conn: psycopg.Connection, run: SystemRun) -> dict[str, str]:
    """entity -> why bronze and silver left this batch out for it (audit.entity_batch_held): it waits behind
    a batch that failed, or the operator skipped it. Entities that were not held are absent."""
    rows = conn.execute(
        "select h.entity, h.reason, h.blocking_batch_id, b.layer from audit.entity_batch_held h"
        " left join audit.entity_batch_blocked b on b.system_id = h.system_id and b.entity = h.entity"
        " where h.system_id = %s and h.batch_id = %s and h.reason in ('waiting', 'skipped')",
        (run.system_id, run.batch_id),
    ).fetchall()
    held = {}
    for entity, reason, blocking, layer in rows:
        if reason == "skipped":
            held.setdefault(entity, f"batch {run.batch_id} was skipped for {entity} by the operator"
                                    " (dataplatform skip)")
        else:
            held[entity] = (f"waiting behind batch {blocking}, which failed in {layer} for {entity}"
                            f" (history is applied in batch order): {fix_hint(entity, blocking)}")
    return held


def blocked_entities(conn: psycopg.Connection, system_id: str) -> list[tuple[str, int, str]]:
    """(entity, blocking batch id, layer) of every entity of a system held back by a failed batch."""
    rows = conn.execute(
        "select entity, batch_id, layer from audit.entity_batch_blocked where system_id = %s order by entity",
        (system_id,),
    ).fetchall()
    return [(str(e), int(b), str(layer)) for e, b, layer in rows]


def gate_behind_entities(conn: psycopg.Connection, system_id: str) -> list[tuple[str, int]]:
    """(entity, batch id) of entities whose newest landed batches the quality gate stopped: the oldest such
    batch with no later batch applied to the entity's silver and not skipped by the operator. The entity is
    behind its source until the batch is re-sent (`run --force --batch`) or skipped (`skip`)."""
    rows = conn.execute(
        """
        select distinct on (g.entity) g.entity, g.batch_id
        from audit.latest_gate_result as g
        join audit.landed_batch as l on l.system_id = g.system_id and l.batch_id = g.batch_id
        where g.system_id = %(system)s and g.status = 'failed'
          and not exists (select 1 from audit.entity_batch_skip as s
                          where s.system_id = g.system_id and s.entity = g.entity and s.batch_id = g.batch_id)
          and not exists (select 1 from audit.silver_applied_batch as a
                          where a.system_id = g.system_id and a.entity = g.entity
                            and (a.batch_timestamp, a.batch_id) >= (l.batch_timestamp, l.batch_id))
        order by g.entity, l.batch_timestamp, l.batch_id
        """,
        {"system": system_id},
    ).fetchall()
    return [(str(e), int(b)) for e, b in rows]


def skip_batch(conn: psycopg.Connection, *, system_id: str, entity: str, batch_id: int, skipped_by: str,
               reason: str | None) -> None:
    """The operator's explicit choice: the batch is never built for the entity, and no longer holds it back.
    Recorded in audit.entity_batch_skip, and as a 'skipped' silver row so `dataplatform status` shows it."""
    with conn.transaction():
        conn.execute(
            "insert into audit.entity_batch_skip (system_id, entity, batch_id, skipped_by, reason)"
            " values (%s, %s, %s, %s, %s) on conflict do nothing",
            (system_id, entity, batch_id, skipped_by, redact_optional(reason)),
        )
        timestamp = conn.execute("select min(batch_timestamp) from audit.system_run where batch_id = %s",
                                 (batch_id,)).fetchone()[0]
        note = f"skipped by {skipped_by} with `dataplatform skip`" + (f": {reason}" if reason else "")
        conn.execute(
            "insert into audit.entity_layer_run (batch_id, batch_timestamp, system_id, entity, layer, status,"
            " ended_at, dagster_run_id, message) values (%s, %s, %s, %s, 'silver', 'skipped', clock_timestamp(),"
            " 'dataplatform skip', %s)",
            (batch_id, timestamp, system_id, entity, redact_optional(note)),
        )


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


def silver_versions(conn: psycopg.Connection, table: str) -> tuple[int, int]:
    """An entity's silver table: its versions and its current versions (valid_to null), in one scan."""
    query = sql.SQL("select count(*), count(*) filter (where valid_to is null) from {}").format(
        sql.Identifier("silver", table))
    versions, current = conn.execute(query).fetchone()
    return int(versions), int(current)


def layer_counts(conn: psycopg.Connection, batch_id: int, dagster_run_id: str) -> dict[tuple[str, str], Counts]:
    """(layer, entity) -> (records in, inserted, updated, deleted) of one batch in one Dagster run."""
    rows = conn.execute(
        "select layer, entity, records_in, inserted, updated, deleted from audit.entity_layer_run"
        " where batch_id = %s and dagster_run_id = %s", (batch_id, dagster_run_id)).fetchall()
    return {(layer, entity): (int(a), int(b), int(c), int(d)) for layer, entity, a, b, c, d in rows}
