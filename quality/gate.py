"""The quality gate on one batch: check each entity's part of it and record the gate's word in the
audit tables, which bronze and silver follow.

The gate's parts, one job each: `quality.plan` (what to check: the queries and expectations, as
data), `quality.gx` (running them with Great Expectations), `quality.report` (the verdict and its
messages); this module puts them together for a batch.

"Previous batch" for `row_count_vs_previous_batch` is the previous *successful* batch of the entity:
the latest batch with an older batch timestamp whose latest quality row for the entity in
`audit.entity_layer_run` succeeded; its count is that row's `records_in` (what the gate counted then;
landing is append-only, so it equals the landed rows).
"""

from __future__ import annotations

import psycopg

from audit import batches
from audit.batches import SystemRun
from audit.entities import record_entity
from metadata.catalog import Catalog
from metadata.models import Entity
from quality.gx import GxValidator
from quality.plan import PreviousBatch, plan_entity
from quality.report import EntityVerdict, error_verdict

LAYER = "quality"


def previous_batch(conn: psycopg.Connection, run: SystemRun, entity: str) -> PreviousBatch | None:
    """The entity's latest batch before this one (by batch timestamp) whose latest quality row succeeded."""
    row = conn.execute(
        "select batch_id, records_in from audit.latest_gate_result"
        " where system_id = %(system)s and entity = %(entity)s and batch_id <> %(batch)s"
        " and status = 'succeeded' and batch_timestamp < %(ts)s"
        " order by batch_timestamp desc, batch_id desc limit 1",
        {"system": run.system_id, "entity": entity, "batch": run.batch_id, "ts": run.batch_timestamp},
    ).fetchone()
    return PreviousBatch(int(row[0]), int(row[1])) if row else None


def has_pg_input_is_valid(conn: psycopg.Connection) -> bool:
    """pg_input_is_valid came with PostgreSQL 16; before it, dates and timestamps are checked by pattern."""
    return conn.info.server_version >= 160000


def check_batch(conn: psycopg.Connection, catalog: Catalog, run: SystemRun, entities: list[Entity],
                validator: GxValidator) -> list[EntityVerdict]:
    """Validate each entity's part of one batch; an entity whose check cannot run fails alone."""
    modern = has_pg_input_is_valid(conn)
    verdicts = []
    for entity in entities:
        try:
            plan = plan_entity(catalog, entity, run.batch_id, previous=previous_batch(conn, run, entity.name),
                               pg_input_is_valid=modern)
            verdicts.append(validator.validate(plan))
        except Exception as err:  # noqa: BLE001 - any error fails this entity, with its message
            verdicts.append(error_verdict(entity, run.batch_id, err))
    return verdicts


def gate_batch(conn: psycopg.Connection, catalog: Catalog, run: SystemRun, entities: list[Entity],
               validator: GxValidator, *, dagster_run_id: str) -> list[EntityVerdict]:
    """Check one batch and record the gate's word in the audit tables: the quality layer run of the
    batch, and one `quality` row per entity (`succeeded`, or `failed` with every failed expectation).

    Those rows are the contract: bronze and silver follow the latest quality row per (batch, system,
    entity). The system run is left open for the steps after the gate to close.
    """
    layer = batches.start_layer(conn, run, LAYER)
    verdicts = []
    try:
        for v in check_batch(conn, catalog, run, entities, validator):
            record_entity(
                conn, layer_run_id=layer, run=run, entity=v.entity, layer=LAYER,
                status="succeeded" if v.passed else "failed", dagster_run_id=dagster_run_id,
                records_in=v.rows, message=v.message[:4000] if v.message else None,
            )
            verdicts.append(v)
    except BaseException as err:
        batches.finish_layer(conn, layer, "failed", message=f"the quality gate stopped: {type(err).__name__}")
        raise
    failed = [v.entity for v in verdicts if not v.passed]
    batches.finish_layer(conn, layer, "failed" if failed else "succeeded",
                       message=f"failed for: {', '.join(failed)}" if failed else None)
    return verdicts
