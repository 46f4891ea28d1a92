"""Landing: one dlt multi-asset per system (through dagster-dlt), one batch per run.

The asset takes the system's landing lock, lets the batch lifecycle take over what a dead run left
(its unlanded rows are removed), resumes a batch a dead run had landed, or asks the system's connector
for the next load (the last one again with `force`), opens the batch, lets dlt land it, counts what
landed, and closes the landing layer. On any error the batch's rows are removed again.

(No `from __future__ import annotations` in asset modules: Dagster reads the config and resource
parameter types at definition time.)
"""


import contextlib
import datetime as dt
from collections.abc import Iterator

import dagster as dg
import psycopg
from dagster_dlt import DagsterDltResource, dlt_assets

from audit import batches, entities
from audit.batches import SystemRun
from audit.locks import SystemBusyError, landing_lock
from ingestion.connectors import CursorReached, PendingLoad, connector_for
from ingestion.landing import (
    LANDING_SCHEMA,
    LOADER_FILE_FORMAT,
    Batch,
    count_batch_rows,
    delete_batches,
    delete_landing,
    delete_run_rows,
    forget_run,
    index_batches,
    landing_pipeline,
    landing_source,
    top_level_fields,
)
from metadata.catalog import Catalog
from metadata.models import Connection, System, parse_connection
from metadata.naming import landing_table
from observability.logs import correlation, set_batch
from orchestration.masking import MaskedLog, masked_failures
from orchestration.memory import release_freed_memory
from orchestration.resources import SecretStoreResource, WarehouseResource
from orchestration.run_config import LandingConfig
from orchestration.run_failures import reported_by_events
from orchestration.translator import LandingTranslator, landing_column_schema
from secret_store.base import resolve_secrets
from secret_store.redact import redact
from testing.fault_points import pause_at
from warehouse.embedded import state_dir


def landing_op_name(system_id: str) -> str:
    return f"landing_{system_id.lower()}"


def _asset_key(system: System, endpoint: str) -> dg.AssetKey:
    return dg.AssetKey([LANDING_SCHEMA, landing_table(system.id, endpoint)])


def _land(context: dg.AssetExecutionContext, dlt: DagsterDltResource, catalog: Catalog, system: System,
          warehouse: WarehouseResource, secrets: SecretStoreResource,
          config: LandingConfig) -> Iterator[dg.MaterializeResult]:
    run_id, base_dir, log = context.run.run_id, state_dir(), MaskedLog(context)
    connection = parse_connection(system.type, resolve_secrets(system.connection, secrets.store()), resolved=True)
    connector = connector_for(system.type)
    with warehouse.connect() as conn, _landing_lock(conn, system):
        relandings = batches.dead_relandings(conn, system.id, dagster_run_id=run_id)
        abandoned, unlanded = batches.take_over(conn, system.id, dagster_run_id=run_id)
        if removed := delete_run_rows(conn, system, relandings):
            log.warning(f"{system.id}: removed {removed} rows of unfinished re-landings {relandings};"
                        " the batches keep the rows of their earlier landing")
        if abandoned:
            log.warning(f"{system.id}: {abandoned} earlier run(s) had stopped before finishing:"
                                " marked abandoned")
        removed = delete_batches(conn, system, unlanded)
        if removed:
            log.warning(f"{system.id}: removed {removed} landed rows of unfinished batches {unlanded}")
        resume = None if config.force else batches.batch_to_resume(conn, system.id)
        if resume is not None:
            yield from _resume_batch(context, system, conn, resume)
            return
        if config.force and config.batch is not None:
            source_ref = _landed_ref(conn, system, config.batch)
            pending = connector.find_load(system.id, connection, source_ref, base_dir=base_dir,
                                          cursors=batches.batch_start_cursors(conn, system.id, config.batch))
        else:
            pending = connector.next_load(system.id, connection, landed=batches.landed_refs(conn, system.id),
                                          cursors=batches.cursors(conn, system.id), base_dir=base_dir)
            if pending is None and config.force and (last := batches.last_landed(conn, system.id)) is not None:
                pending = connector.find_load(system.id, connection, last.source_ref, base_dir=base_dir,
                                              cursors=batches.batch_start_cursors(conn, system.id, last.batch_id))
        if pending is None:
            log.info(f"{system.id}: no new delivery; nothing to land")
            # A materialization although nothing landed: the outputs are optional (can_subset), but Dagster skips
            # every step with an input from an output not yielded: the quality check (which must repeat a standing
            # failure) and the one dbt step, which builds the other systems' batches of the same run too.
            for endpoint in system.endpoints():
                yield dg.MaterializeResult(asset_key=_asset_key(system, endpoint), metadata={"status": "nothing new"})
            return
        yield from _land_batch(context, dlt, catalog, system, conn, warehouse.url(), pending, connection)


def _landed_ref(conn: psycopg.Connection, system: System, batch_id: int) -> str:
    """The delivery of a batch the operator asked to land again (`run --force --batch`)."""
    row = conn.execute("select source_ref from audit.landed_batch where system_id = %s and batch_id = %s",
                       (system.id, batch_id)).fetchone()
    if row is None:
        raise dg.Failure(f"{system.id}: batch {batch_id} is not a landed batch of {system.id}; nothing to land"
                         " again (see `dataplatform status` for its batches)")
    return str(row[0])


@contextlib.contextmanager
def _landing_lock(conn: psycopg.Connection, system: System) -> Iterator[None]:
    """The system's landing lock, or a step failure that says another run is landing it."""
    lock = landing_lock(conn, system.id)
    try:
        lock.__enter__()
    except SystemBusyError as err:
        raise dg.Failure(f"system {system.id}: another run is landing it right now;"
                         " try again when it has finished") from err
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _resume_batch(context: dg.AssetExecutionContext, system: System, conn: psycopg.Connection,
                  previous: SystemRun) -> Iterator[dg.MaterializeResult]:
    """A batch landed by a run that died later: open a new run of it, skip landing, and let the
    later steps finish it (each of them is idempotent per batch)."""
    run = batches.open_batch(conn, system_id=system.id, source_ref=previous.source_ref,
                             batch_timestamp=previous.batch_timestamp, dagster_run_id=context.run.run_id)
    layer = batches.start_layer(conn, run, "landing")
    message = f"batch {run.batch_id} was already landed by run {previous.system_run_id}, which was abandoned; resuming"
    MaskedLog(context).warning(f"{system.id}: {message}")
    for endpoint in system.endpoints():
        table = landing_table(system.id, endpoint)
        entities.record_entity(conn, layer_run_id=layer, run=run, entity=endpoint, layer="landing", status="skipped",
                               dagster_run_id=context.run.run_id, message=message,
                               records_in=count_batch_rows(conn, table, run.batch_id))
        yield dg.MaterializeResult(asset_key=_asset_key(system, endpoint),
                                   metadata={"status": "resumed", "batch_id": run.batch_id})
    batches.finish_layer(conn, layer, "skipped", message=message)


def _land_batch(context: dg.AssetExecutionContext, dlt: DagsterDltResource, catalog: Catalog, system: System,
                conn: psycopg.Connection, url: str, pending: PendingLoad,
                connection: Connection) -> Iterator[dg.MaterializeResult]:
    """Land one delivery. A forced re-land of a batch writes its new rows beside the old ones (told apart by
    this landing's `_run_id` and `_loaded_at`) and swaps them in one transaction once dlt has finished: a
    re-land that fails leaves the batch's old rows, and so bronze and silver, exactly as they were."""
    run_id, base_dir = context.run.run_id, state_dir()
    run = batches.open_batch(conn, system_id=system.id, source_ref=pending.source_ref,
                             batch_timestamp=pending.timestamp, dagster_run_id=run_id)
    set_batch(run.batch_id)  # every log line of the step from here on carries it
    layer = batches.start_layer(conn, run, "landing")
    MaskedLog(context).info(f"{system.id}: landing delivery {pending.source_ref} as batch {run.batch_id}")
    batch = Batch(run.batch_id, system.id, pending.source_ref, pending.timestamp, run_id, dt.datetime.now(dt.UTC))
    started = dt.datetime.now(dt.UTC)
    pipeline = landing_pipeline(system.id, url, pipelines_dir=base_dir / "dlt")
    reached = CursorReached()
    try:
        results = list(
            dlt.run(
                context=context,
                dlt_source=landing_source(system, batch=batch, load=pending, reached=reached, connection=connection,
                                          base_dir=base_dir),
                dlt_pipeline=pipeline,
                loader_file_format=LOADER_FILE_FORMAT,
            )
        )
        forget_run(pipeline)
        pause_at("landing", marker_dir=base_dir)
    except Exception as err:
        forget_run(pipeline, failed=True)
        delete_landing(conn, system, run.batch_id, run_id, batch.loaded_at, keep=False)
        what = (f"batch {run.batch_id} keeps the rows of its earlier landing, as they were"
                if pending.source_ref in batches.landed_refs(conn, system.id)
                else f"nothing of batch {run.batch_id} kept")
        message = redact(f"landing failed, {what}: {err}")[:4000]
        batches.finish_layer(conn, layer, "failed", message=message)
        batches.close_batch(conn, run, "failed", message=message)
        # masked_failures masks it; nothing chained. The failed landing layer is an event: notified as such.
        raise dg.Failure(f"{system.id}: {message}", metadata=reported_by_events()) from None
    outputs = []
    # One transaction: the old rows of a re-landed batch go, and the landing counts as done, together (a run
    # killed in between leaves either the old rows with an unfinished landing, or the new rows with a finished one).
    with conn.transaction():
        replaced = delete_landing(conn, system, run.batch_id, run_id, batch.loaded_at, keep=True)
        for result in results:
            table = result.asset_key.path[-1]
            index_batches(conn, table)
            rows = count_batch_rows(conn, table, run.batch_id)
            endpoint = next(e for e in system.endpoints() if landing_table(system.id, e) == table)
            new_fields = sorted(top_level_fields(conn, table, run.batch_id)
                                - catalog.modelled_fields(system.id, endpoint))
            note = f"new source fields, landed but not modelled: {', '.join(new_fields)}" if new_fields else None
            entities.record_entity(
                conn, layer_run_id=layer, run=run, entity=endpoint, layer="landing", status="succeeded",
                dagster_run_id=run_id, started_at=started, records_in=rows, inserted=rows, message=note,
            )
            outputs.append((result, endpoint, rows, note))
        # Where reading got to becomes the cursor only here, with the landing: a failed or killed run leaves it.
        batches.record_cursors(conn, system.id, run.batch_id, started=pending.cursors, reached=reached.values)
        batches.finish_layer(conn, layer, "succeeded")
    # The cursors are stored: a source that keeps what was read until it landed (a replication slot) may let it go.
    release = getattr(connector_for(system.type), "release", None)
    if release is not None and reached.values:
        for note in release(system.id, connection, reached.values, base_dir=base_dir):
            MaskedLog(context).warning(note)
    if replaced:
        MaskedLog(context).info(f"{system.id}: batch {run.batch_id} re-landed; its {replaced} earlier rows replaced")
    for result, endpoint, rows, note in outputs:
        if note:
            MaskedLog(context).warning(f"{system.id}.{endpoint}: {note}")
        yield dg.MaterializeResult(
            asset_key=result.asset_key,
            # dlt's own column schema (its type names, no descriptions) would hide the documented one.
            metadata={**(result.metadata or {}), "dagster/column_schema": landing_column_schema(),
                      "batch_id": run.batch_id, "delivery": pending.source_ref,
                      "batch_timestamp": pending.timestamp.isoformat(), "rows_in_batch": rows},
        )


def landing_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    """One multi-asset per system; each endpoint's landing table is one asset."""
    definitions = []
    for system in catalog.systems.values():

        def make(system: System = system) -> dg.AssetsDefinition:
            @dlt_assets(
                dlt_source=landing_source(system),
                dlt_pipeline=landing_pipeline(system.id, "postgresql://describe-only@localhost/none",
                                              pipelines_dir=state_dir() / "dlt"),
                name=landing_op_name(system.id),
                dagster_dlt_translator=LandingTranslator(),
                op_tags={"system": system.id},
            )
            def _assets(context: dg.AssetExecutionContext, dlt: DagsterDltResource, warehouse: WarehouseResource,
                        secrets: SecretStoreResource, config: LandingConfig) -> Iterator[dg.MaterializeResult]:
                with masked_failures(), correlation(run_id=context.run.run_id):
                    yield from _land(context, dlt, catalog, system, warehouse, secrets, config)
                release_freed_memory()  # dlt's buffers: not carried into the next step (memory.py)

            return _assets

        definitions.append(make())
    return definitions
