"""Landing: one dlt multi-asset per system (through dagster-dlt), one batch per run.

The asset takes the system's landing lock, cleans up what a crashed run left, picks the next
delivery (or the last one again under --force), opens the batch in the audit tables, lets dlt land
it, counts what landed, and closes the batch. On any error the batch's rows are removed again.
"""


import datetime as dt
from collections.abc import Iterator

import dagster as dg
import psycopg
from dagster_dlt import DagsterDltResource, dlt_assets

from ingestion.landing import (
    LOADER_FILE_FORMAT, Batch, count_batch_rows, delete_batches, find_load, index_batches, landing_pipeline, landing_source, next_load, top_level_fields,
)
from metadata.catalog import Catalog
from metadata.models import System
from metadata.naming import landing_table
from metadata.secrets import EnvSecretStore, resolve_secrets
from orchestration import audit
from orchestration.runtime import FORCE_TAG, advisory_key, warehouse_url
from orchestration.faults import pause_at
from orchestration.translator import LandingTranslator
from orchestration.warehouse import state_dir

CURSOR_ENDPOINT = "deliveries"  # json_files keep one cursor per system: the last delivery landed (informational)


def _land(context: dg.AssetExecutionContext, dlt: DagsterDltResource, catalog: Catalog, system: System) -> Iterator[dg.MaterializeResult]:
    url, run_id = warehouse_url(), context.run.run_id
    force = context.run.tags.get(FORCE_TAG) == "true"
    base_dir = state_dir()
    connection = resolve_secrets(system.connection, EnvSecretStore())
    with psycopg.connect(url, autocommit=True) as conn:
        locked = conn.execute("select pg_try_advisory_lock(%s)", (advisory_key(f"landing:{system.id}"),)).fetchone()[0]
        if not locked:
            raise dg.Failure(f"system {system.id}: another run is landing it right now; try again when it has finished")
        try:
            abandoned = audit.mark_abandoned(conn, system.id, current_dagster_run_id=run_id)
            if abandoned:
                context.log.warning(f"{system.id}: {abandoned} earlier run(s) had stopped before finishing: marked abandoned")
            unlanded = audit.unlanded_batches(conn, system.id)
            removed = delete_batches(conn, system, unlanded)
            if removed:
                context.log.warning(f"{system.id}: removed {removed} landed rows of unfinished batches {unlanded}")
            resume = None if force else audit.batch_to_resume(conn, system.id)
            if resume is not None:
                yield from _resume_batch(context, system, conn, resume)
                return
            pending = next_load(system, connection, landed=audit.landed_refs(conn, system.id), base_dir=base_dir)
            if pending is None and force and (last := audit.last_landed(conn, system.id)) is not None:
                pending = find_load(system, connection, last.source_ref, base_dir=base_dir)
            if pending is None:
                context.log.info(f"{system.id}: no new delivery; nothing to land")
                for endpoint in system.endpoints():
                    yield dg.MaterializeResult(
                        asset_key=dg.AssetKey(["landing", landing_table(system.id, endpoint)]),
                        metadata={"status": "nothing new"},
                    )
                return
            yield from _land_batch(context, dlt, catalog, system, conn, url, pending, connection, base_dir)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (advisory_key(f"landing:{system.id}"),))


def _resume_batch(context, system: System, conn: psycopg.Connection, previous: audit.SystemRun) -> Iterator[dg.MaterializeResult]:  # type: ignore[no-untyped-def]
    """A batch landed by a run that died later: open a new run of it, skip landing, and let the
    later steps finish it (each of them is idempotent per batch)."""
    run = audit.start_system_run(conn, system_id=system.id, source_ref=previous.source_ref,
                                 batch_timestamp=previous.batch_timestamp, dagster_run_id=context.run.run_id)
    layer = audit.start_layer(conn, run, "landing")
    message = f"batch {run.batch_id} was already landed by run {previous.system_run_id}, which was abandoned; resuming"
    context.log.warning(f"{system.id}: {message}")
    for endpoint in system.endpoints():
        table = landing_table(system.id, endpoint)
        audit.record_entity(conn, layer_run_id=layer, run=run, entity=endpoint, layer="landing", status="skipped",
                            dagster_run_id=context.run.run_id, records_in=count_batch_rows(conn, table, run.batch_id),
                            message=message)
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["landing", table]),
                                   metadata={"status": "resumed", "batch_id": run.batch_id})
    audit.finish_layer(conn, layer, "skipped", message=message)


def _land_batch(context, dlt, catalog, system, conn, url, pending, connection, base_dir) -> Iterator[dg.MaterializeResult]:  # type: ignore[no-untyped-def]
    run_id = context.run.run_id
    run = audit.start_system_run(
        conn, system_id=system.id, source_ref=pending.source_ref, batch_timestamp=pending.timestamp, dagster_run_id=run_id
    )
    layer = audit.start_layer(conn, run, "landing")
    delete_batches(conn, system, [run.batch_id])  # a forced re-run replaces its own batch, never adds to it
    context.log.info(f"{system.id}: landing delivery {pending.source_ref} as batch {run.batch_id}")
    batch = Batch(run.batch_id, system.id, pending.source_ref, pending.timestamp, run_id, dt.datetime.now(dt.timezone.utc))
    started = dt.datetime.now(dt.timezone.utc)
    try:
        results = list(
            dlt.run(
                context=context,
                dlt_source=landing_source(system, batch=batch, connection=connection, base_dir=base_dir),
                dlt_pipeline=landing_pipeline(system.id, url, pipelines_dir=base_dir / "dlt"),
                loader_file_format=LOADER_FILE_FORMAT,
            )
        )
        pause_at("landing", marker_dir=base_dir)
    except Exception as err:
        delete_batches(conn, system, [run.batch_id])
        message = f"landing failed, nothing of batch {run.batch_id} kept: {err}"[:4000]
        audit.finish_layer(conn, layer, "failed", message=message)
        audit.finish_system_run(conn, run, "failed", message=message)
        raise dg.Failure(f"{system.id}: {message}") from err
    for result in results:
        table = result.asset_key.path[-1]
        index_batches(conn, table)
        rows = count_batch_rows(conn, table, run.batch_id)
        endpoint = next(e for e in system.endpoints() if landing_table(system.id, e) == table)
        new_fields = sorted(top_level_fields(conn, table, run.batch_id) - catalog.modelled_fields(system.id, endpoint))
        note = f"new source fields, landed but not modelled: {', '.join(new_fields)}" if new_fields else None
        if note:
            context.log.warning(f"{system.id}.{endpoint}: {note}")
        audit.record_entity(
            conn, layer_run_id=layer, run=run, entity=endpoint, layer="landing", status="succeeded",
            dagster_run_id=run_id, started_at=started, records_in=rows, inserted=rows, message=note,
        )
        yield dg.MaterializeResult(
            asset_key=result.asset_key,
            metadata={**(result.metadata or {}), "batch_id": run.batch_id, "delivery": pending.source_ref,
                      "batch_timestamp": pending.timestamp.isoformat(), "rows_in_batch": rows},
        )
    audit.set_cursor(conn, system.id, CURSOR_ENDPOINT, pending.source_ref, run.batch_id)
    audit.finish_layer(conn, layer, "succeeded")


def landing_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    """One multi-asset per system; each endpoint's landing table is one asset."""
    definitions = []
    for system in catalog.systems.values():

        def make(system: System = system) -> dg.AssetsDefinition:
            @dlt_assets(
                dlt_source=landing_source(system),
                dlt_pipeline=landing_pipeline(system.id, "postgresql://describe-only@localhost/none",
                                              pipelines_dir=state_dir() / "dlt"),
                name=f"landing_{system.id.lower()}",
                dagster_dlt_translator=LandingTranslator(),
                op_tags={"system": system.id},
            )
            def _assets(context: dg.AssetExecutionContext, dlt: DagsterDltResource) -> Iterator[dg.MaterializeResult]:
                yield from _land(context, dlt, catalog, system)

            return _assets

        definitions.append(make())
    return definitions
