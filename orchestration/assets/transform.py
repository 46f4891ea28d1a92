"""Bronze, silver and gold: the dbt project as Dagster assets (through dagster-dbt), with audit rows.

One `dbt build` runs the selected models with their data and unit tests. For every batch this
Dagster run landed, each layer gets its audit rows: bronze and gold counts are measured here after
dbt; silver's come from the scd2_history materialization itself (it counts inside its transaction).

A run that landed nothing and finds nothing for dbt to do (audit/builds.py says when) does not start dbt
at all: no model, no test, no materialization; the step says why in its log.
"""


import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
from dagster_dbt import DbtProject, dbt_assets
from psycopg import sql

from audit import batches, builds, entities
from audit.batches import SystemRun
from audit.locks import transform_lock
from codegen.dbt_parse import parsed_project_hash
from ingestion.landing import count_batch_rows
from metadata.catalog import Catalog
from observability.logs import correlation, json_stdout, set_batch
from orchestration.dbt_in_process import InProcessDbtInvocation, dbt_in_process
from orchestration.masking import MaskedLog, masked_failures
from orchestration.resources import WarehouseResource
from orchestration.run_config import TransformConfig
from orchestration.run_failures import reported_by_events
from orchestration.translator import LayerTranslator
from secret_store.redact import redact


def _counts(conn: psycopg.Connection, schema: str, table: str, batch_ids: list[int]) -> dict[str, int]:
    """An asset's row counts for its materialization, each costing what the change costs, not what the history does:
    bronze, the rows of this run's batches (by the _batch_id index; bronze keeps every batch it was sent, so a count
    of the whole table would read all of its history every run); silver, its versions and current versions (one
    scan; silver grows by the changes only); gold, its rows (it is rebuilt whole anyway)."""
    relation = sql.Identifier(schema, table)
    if schema == "bronze":
        if not batch_ids:
            return {}
        in_batch = conn.execute(
            sql.SQL("select count(*) from {} where _batch_id = any(%s)").format(relation), (batch_ids,)
        ).fetchone()[0]
        return {"rows_in_batch": int(in_batch)}
    if schema == "silver":
        versions, current = entities.silver_versions(conn, table)
        return {"row_count": versions, "current_versions": current}
    return {"row_count": int(conn.execute(sql.SQL("select count(*) from {}").format(relation)).fetchone()[0])}


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the dbt build run inside the block (dbt's env_var reads them)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _entity_status(layer: str, table: str, gate: str | None, succeeded: set[str],
                   failed: dict[str, str], held: str | None, failure: str) -> tuple[str, str | None]:
    key = f"{layer}.{table}"
    if gate == "failed":
        return "skipped", "stopped by the quality gate for this batch"
    if held is not None:
        return "skipped", held
    if key in failed:
        return "failed", f"{failure}: {failed[key]}"
    if key in succeeded:
        return "succeeded", None
    return "skipped", "not selected in this run"


def _audit_layers(conn: psycopg.Connection, catalog: Catalog, runs: list[SystemRun], run_id: str,
                  succeeded: set[str], failed: dict[str, str]) -> None:
    """Write bronze/silver/gold audit rows for each batch of this run, from what is in the tables."""
    for run in runs:
        system_entities = catalog.entities_of(run.system_id)
        gate = entities.gate_results(conn, run)
        held = entities.held_batch(conn, run)  # asked before this batch's own rows are written
        for layer in ("bronze", "silver"):
            layer_id = batches.start_layer(conn, run, layer)
            if layer == "silver":
                entities.adopt_entity_rows(conn, layer_id, run, "silver", run_id)
            for entity in system_entities:
                table = catalog.table(entity)
                failure = (f"batch {run.batch_id} failed in {layer} for {entity.name}; its later batches wait"
                           f" behind it: {entities.fix_hint(entity.name, run.batch_id)}")
                status, message = _entity_status(layer, table, gate.get(entity.name), succeeded, failed,
                                                 held.get(entity.name), failure)
                if layer == "bronze":
                    rows = conn.execute(
                        sql.SQL("select count(*) from {} where _batch_id = %s").format(sql.Identifier("bronze", table)),
                        (run.batch_id,),
                    ).fetchone()[0] if status == "succeeded" else 0
                    landed = count_batch_rows(conn, catalog.landing_table(entity), run.batch_id)
                    entities.record_entity(conn, layer_run_id=layer_id, run=run, entity=entity.name, layer=layer,
                                        status=status, dagster_run_id=run_id, records_in=landed, inserted=int(rows),
                                        message=message)
                elif status != "succeeded":
                    entities.record_entity(conn, layer_run_id=layer_id, run=run, entity=entity.name, layer=layer,
                                        status=status, dagster_run_id=run_id, message=message)
                elif not entities.has_entity_row(conn, run, entity.name, layer, run_id):
                    # The materialization writes a row per batch it applies; none means it had applied this one.
                    entities.record_entity(conn, layer_run_id=layer_id, run=run, entity=entity.name, layer=layer,
                                        status="skipped", dagster_run_id=run_id,
                                        message="batch already applied to silver; nothing to do")
            layer_failed = any(f"{layer}.{catalog.table(e)}" in failed for e in system_entities)
            batches.finish_layer(conn, layer_id, "failed" if layer_failed else "succeeded")
        gold_id = batches.start_layer(conn, run, "gold")
        gold_failed = sorted(name for name in failed if name.startswith("gold."))
        batches.finish_layer(conn, gold_id, "failed" if gold_failed else "succeeded",
                           message="; ".join(failed[n] for n in gold_failed) or None)
        problems = [f"{name}: {failed[name]}" for name in sorted(failed)]
        problems += [f"quality gate failed for {entity}" for entity, status in sorted(gate.items())
                     if status == "failed"]
        problems += [f"{entity}: {message}" for entity, message in sorted(held.items())
                     if gate.get(entity) != "failed" and message.startswith("waiting")]
        batches.close_batch(conn, run, "failed" if problems else "succeeded",
                                message=redact("; ".join(problems))[:4000] or None)


def transform_assets(catalog: Catalog, project: DbtProject) -> dg.AssetsDefinition:
    project_hash = parsed_project_hash(project.project_dir) or "unknown"  # what this manifest was parsed from

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=LayerTranslator(),
                name="dbt_layers")
    def _dbt_layers(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                    config: TransformConfig) -> Iterator[Any]:
        with masked_failures(), correlation(run_id=context.run.run_id):
            # Whatever started this run (CLI, UI, schedule, sensor), no other dbt build runs meanwhile.
            with transform_lock(warehouse.url(), on_wait=lambda: MaskedLog(context).warning(
                    "another run's dbt build is in progress: waiting for it to finish before building")):
                with json_stdout("dbt"):
                    yield from _build(context, catalog, project, warehouse, config, project_hash)
            _fail_if_entities_failed(warehouse, context.run.run_id, _selected_entities(context, catalog))

    return _dbt_layers


def _selected_entities(context: dg.AssetExecutionContext, catalog: Catalog) -> list[tuple[str, str]]:
    """(system, entity) of every entity whose bronze or silver this step builds."""
    tables = {key.path[-1] for key in context.selected_asset_keys if key.path[0] in ("bronze", "silver")}
    return [(e.system_id, e.name) for e in catalog.entities.values() if catalog.table(e) in tables]


def _behind(conn: psycopg.Connection, selected: list[tuple[str, str]]) -> list[tuple[str, str, int, str]]:
    """(system, entity, batch, what) of each selected entity that is behind its source: held back by a batch that
    failed in bronze or silver, or with its newest batch stopped by the quality gate (as the CLI reports them)."""
    wanted = set(selected)
    behind = []
    for system in sorted({s for s, _ in selected}):
        behind += [(system, e, b, f"failed in {layer}; later batches wait behind it")
                   for e, b, layer in entities.blocked_entities(conn, system) if (system, e) in wanted]
        behind += [(system, e, b, "stopped by the quality gate, not applied")
                   for e, b in entities.gate_behind_entities(conn, system) if (system, e) in wanted]
    return behind


def _fail_if_entities_failed(warehouse: WarehouseResource, run_id: str, selected: list[tuple[str, str]]) -> None:
    """After every healthy entity is built and materialized: fail the step (so the Dagster run) when an entity of
    this run failed in the gate, bronze or silver, or an entity it builds is still behind (a batch held back, or
    stopped by the gate, in an earlier run: the CLI exits 1 for those too), naming each with its batch and the fix.
    The audit rows say so already; this makes the UI's run status agree with the CLI."""
    with warehouse.connect() as conn:
        failures = entities.failed_entity_batches(conn, run_id)
        named = {(system, entity) for system, entity, *_ in failures}
        behind = [b for b in _behind(conn, selected) if (b[0], b[1]) not in named]
    if not failures and not behind:
        return
    parts = []
    if failures:
        names = "; ".join(f"{system}.{entity} batch {batch} ({layer})" for system, entity, batch, layer, _ in failures)
        parts.append(f"{len(failures)} entity step(s) failed in this run: {names}. The other entities were built;"
                     " each failure's reason is in this failure's metadata and in the audit tables.")
    if behind:
        names = "; ".join(f"{system}.{entity} batch {batch} ({what}): {entities.fix_hint(entity, batch)}"
                          for system, entity, batch, what in behind)
        parts.append(f"{len(behind)} entity(ies) behind their source: {names}.")
    failed_rows = [{"system": system, "entity": entity, "batch_id": batch, "layer": layer,
                    "message": redact(message or "")} for system, entity, batch, layer, message in failures]
    behind_rows = [{"system": system, "entity": entity, "batch_id": batch, "what": what,
                    "fix": entities.fix_hint(entity, batch)} for system, entity, batch, what in behind]
    # Each failure is an entity's event, of this run or (an entity behind) of the run that failed it: notified so.
    raise dg.Failure(description=" ".join(parts), metadata={"failures": dg.MetadataValue.json(failed_rows),
                                                            "behind": dg.MetadataValue.json(behind_rows),
                                                            **reported_by_events()})


def _landing_driven(context: dg.AssetExecutionContext) -> bool:
    """Whether this run was started to land and build (a platform job, "Materialize all"), not to build chosen
    dbt assets (the UI's materialize of a silver or gold asset, a replay): those are always built."""
    selection = context.run.asset_selection  # None or empty: the whole job
    return not selection or any(key.path[0] == "landing" for key in selection)


def _nothing_to_build(context: dg.AssetExecutionContext, conn: psycopg.Connection, catalog: Catalog,
                      config: TransformConfig, project_hash: str) -> str | None:
    """Why dbt has nothing to do in this run (see audit/builds.py), or None when it must build."""
    if config.replay or not _landing_driven(context):
        return None
    if not builds.last_build_was_clean(conn, project_hash):
        return None
    if builds.pending_entity_batches(conn, _selected_entities(context, catalog)):
        return None
    relations = [".".join(key.path) for key in context.selected_asset_keys if len(key.path) == 2]
    if builds.missing_relations(conn, relations):  # say, a table dropped by hand: dbt builds it again
        return None
    return ("nothing landed in this run, no batch waits for bronze or silver, and the last dbt build of this"
            " project was clean: dbt not started, nothing materialized")


def _build(context: dg.AssetExecutionContext, catalog: Catalog, project: DbtProject, warehouse: WarehouseResource,
           config: TransformConfig, project_hash: str) -> Iterator[Any]:
    """dbt build of the selected models, their events handed on to Dagster, then the layers' audit rows."""
    run_id = context.run.run_id
    with warehouse.connect() as conn:
        runs = batches.system_runs_of(conn, run_id)
        batch_ids = [r.batch_id for r in runs]
        if len(batch_ids) == 1:
            set_batch(batch_ids[0])
        if not runs and (reason := _nothing_to_build(context, conn, catalog, config, project_hash)):
            MaskedLog(context).info(reason)
            return
        # Run-specific values reach the materializations as environment variables, not --vars:
        # changed vars make dbt re-parse the whole project, which costs more than the build.
        replay = {f"{r.system_id}.{r.entity}": r.from_batch for r in config.replay}
        build_id = builds.start_build(conn, dagster_run_id=run_id, project_hash=project_hash)
        succeeded: set[str] = set()
        owners = {catalog.table(e): (e.system_id, e.name) for e in catalog.entities.values()}
        invocation = dbt_in_process(["build", "--exclude", "resource_type:unit_test"], context=context, project=project)
        with _environment(DATAPLATFORM_RUN_ID=run_id, DATAPLATFORM_REPLAY=json.dumps(replay)):
            for event in invocation.stream():
                if isinstance(event, dg.Output):
                    key = context.asset_key_for_output(event.output_name)
                    succeeded.add(".".join(key.path))
                    counts = _counts(conn, *key.path, batch_ids)
                    if not _received_rows(conn, key, counts, run_id, owners):
                        # An asset materializes only when it received rows: an entity the gate stopped or a held
                        # batch keeps out (or one with nothing pending) is observed, without this run's batch ids.
                        yield dg.AssetObservation(asset_key=key, metadata={
                            **counts, "status": "no rows in this run (batch skipped or held for this entity, or"
                                                " nothing to apply)"})
                        continue
                    event = event.with_metadata({**event.metadata, **counts, "batch_ids": json.dumps(batch_ids)})
                yield event
        failed = _failed_models(invocation)
        builds.finish_build(conn, build_id, clean=_clean(invocation) and not failed)
        _audit_layers(conn, catalog, runs, run_id, succeeded, failed)
        if failed:
            # With batches in this run, _audit_layers wrote each failed layer's event; without, none reports it.
            raise dg.Failure(f"dbt build failed for: {', '.join(sorted(failed))}; see the dbt log in this step",
                             metadata=reported_by_events() if runs else None)


def _received_rows(conn: psycopg.Connection, key: dg.AssetKey, counts: dict[str, int], run_id: str,
                   owners: dict[str, tuple[str, str]]) -> bool:
    """Whether a dbt asset got rows in this run: silver, a batch applied by its materialization in this run (its
    audit row); bronze, rows of this run's batches, or of a batch its silver applied in this run (a batch that
    waited behind a skipped one); gold, always (rebuilt from silver)."""
    layer, table = key.path[0], key.path[-1]
    if layer not in ("bronze", "silver") or table not in owners:
        return True
    if layer == "bronze" and counts.get("rows_in_batch", 0) > 0:
        return True
    return owners[table] in entities.silver_applied_in_run(conn, run_id)


def _clean(invocation: InProcessDbtInvocation) -> bool:
    """Every node of the build succeeded (no error, no failed or skipped test or model)."""
    results = invocation.run_results.get("results", [])
    return all(r.get("status") in ("success", "pass", "warn") for r in results)


def _failed_models(invocation: InProcessDbtInvocation) -> dict[str, str]:
    """`schema.table` -> dbt's error message, for every model that errored (from run_results.json)."""
    results = invocation.run_results
    manifest = invocation.manifest
    failed = {}
    for result in results.get("results", []):
        if result.get("status") in ("error", "fail") and result["unique_id"].startswith("model."):
            node = manifest["nodes"][result["unique_id"]]
            name = f"{node['config'].get('schema')}.{node.get('alias') or node['name']}"
            failed[name] = redact(" ".join((result.get("message") or "error").split()))[:2000]
    return failed
