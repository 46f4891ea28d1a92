"""The quality gate on a batch's landing data, before bronze: one Dagster asset check per entity.

One multi-asset check per system, with one `AssetCheckSpec` per entity on the entity's landing table.
The checking itself is Great Expectations 1.x (`quality.gate`, which plans with `quality.plan`, runs
with `quality.gx` and reports with `quality.report`): generic checks for every entity (primary key
present and unique, declared attributes present with their types) plus the checks the entity
declares in metadata (row counts). Each check's result carries every expectation
with its observed values; its description names the failed ones.

How a failure stops one entity and not the others:

- The gate's word is the audit row: one `quality` row per entity and batch in
  `audit.entity_layer_run`, `failed` with the failed expectations and observed values in its
  message. Bronze and silver follow the latest such row per (batch, system, entity) and skip an
  entity whose gate failed; the run then ends failed (exit status 1) because a row of it failed.
- The checks are `blocking=True`, but a failed entity is reported with severity WARN. Dagster turns a
  blocking check into an execution dependency (the dbt step waits for the gate; a non-blocking check
  has no edge, so nothing keeps dbt from running before the gate has written its rows), and it
  skips every downstream step when a blocking check fails with severity ERROR. All entities' dbt
  models run in one step, so an ERROR would stop the healthy entities too. WARN keeps the ordering
  and lets that step run; the per-entity stop happens in bronze/silver, from the audit rows. That step
  ends by failing (so the Dagster run is failed, as the CLI's exit status says) when an entity of the run
  failed, naming each entity and batch, once the healthy entities are built and materialized.
- A run with nothing new for a system repeats each entity's standing gate failure (the latest failed
  batch that silver has not applied since): a quiet run never shows a failed entity green.
- If the gate itself cannot run (the warehouse is gone, GX cannot start), the step fails, and
  because the checks are blocking the dbt step does not run at all: nothing unchecked reaches bronze.
  An entity whose own check errors (say, a query error) fails alone, like an entity that fails.
"""


import json
from collections.abc import Iterator

import dagster as dg
import psycopg

from audit import batches
from audit.batches import SystemRun
from audit.entities import record_entity, unapplied_gate_failures
from ingestion.landing import LANDING_SCHEMA
from metadata.catalog import Catalog
from metadata.models import Entity, System
from orchestration.masking import MaskedLog, masked_failures
from orchestration.memory import release_freed_memory
from orchestration.resources import WarehouseResource
from orchestration.run_failures import reported_by_events
from quality.gate import LAYER, gate_batch
from quality.gx import GxValidator
from quality.report import EntityVerdict
from secret_store.redact import redact


def check_name(entity: Entity) -> str:
    return f"{entity.name}_quality_gate"


def _asset_key(catalog: Catalog, entity: Entity) -> dg.AssetKey:
    return dg.AssetKey([LANDING_SCHEMA, catalog.landing_table(entity)])


def _description(catalog: Catalog, entity: Entity) -> str:
    checks = [f"primary key ({', '.join(catalog.primary_key(entity))}) present and unique in the batch",
              "declared attributes present with their declared types"]
    quality = entity.quality
    if quality.attributes_present != "off":
        checks.append(f"each Optional attribute carried by some record of the batch ({quality.attributes_present})")
    if quality.row_count:
        checks.append(f"row count between {quality.row_count.min} and {quality.row_count.max}")
    if quality.row_count_vs_previous_batch:
        v = quality.row_count_vs_previous_batch
        checks.append(f"row count between {v.min_percent}% and {v.max_percent}% of the previous successful batch")
    return f"Quality gate of {entity.name} (Great Expectations): " + "; ".join(checks) + "."


def quality_checks(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    definitions = []
    for system in catalog.systems.values():
        entities = catalog.entities_of(system.id)
        if not entities:
            continue

        def make(system: System = system, entities: list[Entity] = entities) -> dg.AssetChecksDefinition:
            specs = [
                dg.AssetCheckSpec(name=check_name(e), asset=_asset_key(catalog, e), blocking=True,
                                  description=_description(catalog, e))
                for e in entities
            ]

            @dg.multi_asset_check(specs=specs, name=f"quality_{system.id.lower()}")
            def _check(context: dg.AssetCheckExecutionContext,
                       warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
                with masked_failures():
                    yield from _run_checks(context, warehouse, catalog, system, entities)
                release_freed_memory()  # the gate's query results: not carried into the dbt step (memory.py)

            return _check

        definitions.append(make())
    return definitions


def _markdown(verdict: EntityVerdict) -> str:
    lines = ["| expectation | result | observed |", "| --- | --- | --- |"]
    for o in verdict.outcomes:
        result = "passed" if o.success else "warning" if o.severity == "warning" else "**FAILED**"
        lines.append(f"| {o.label} | {result} | {o.summary.replace('|', '/')} |")
    lines += [f"| {note} | skipped | |" for note in verdict.notes]
    return "\n".join(lines)


def _result(catalog: Catalog, entity: Entity, run: SystemRun, verdict: EntityVerdict,
            startup: float) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {
        "batch_id": run.batch_id,
        "batch_timestamp": run.batch_timestamp.isoformat(),
        "rows": verdict.rows,
        "expectations": dg.MetadataValue.md(_markdown(verdict)),
        "results": dg.MetadataValue.json([
            {"expectation": o.expectation_type, "check": o.label, "success": o.success, "observed": o.observed}
            for o in verdict.outcomes
        ]),
        "failed_expectations": len(verdict.failed) if verdict.outcomes else 1,
        "seconds": round(verdict.seconds, 3),
        "gx_startup_seconds": round(startup, 3),
    }
    if verdict.notes:
        metadata["skipped"] = "; ".join(verdict.notes)
    if verdict.warnings:  # reported, not stopping the entity (e.g. attributes_present: warning)
        metadata["warnings"] = redact("; ".join(o.summary for o in verdict.warnings))
    description = redact(verdict.message or "") if not verdict.passed or verdict.warnings else (
        f"batch {run.batch_id}: all {len(verdict.outcomes)} expectations passed"
        + "".join(f"; {note}" for note in verdict.notes))
    return dg.AssetCheckResult(
        check_name=check_name(entity),
        asset_key=_asset_key(catalog, entity),
        passed=verdict.passed,
        # WARN, not ERROR: see the module docstring (the failed entity is stopped by its audit row).
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=description,
    )


def _standing_results(conn: psycopg.Connection, catalog: Catalog, system: System,
                      entities: list[Entity]) -> Iterator[dg.AssetCheckResult]:
    """Nothing new landed: each check repeats the gate's standing word. A failed gate result stands until silver
    has applied that batch, so a quiet run never turns a failed entity green in the UI."""
    standing = unapplied_gate_failures(conn, system.id)
    for entity in entities:
        if entity.name in standing:
            batch_id, message = standing[entity.name]
            yield dg.AssetCheckResult(
                check_name=check_name(entity), asset_key=_asset_key(catalog, entity), passed=False,
                severity=dg.AssetCheckSeverity.WARN,  # as in _result: the audit rows stop the entity
                metadata={"batch_id": batch_id, "standing": "nothing new landed; this batch's failure stands"},
                description=redact(f"nothing new landed in this run; the gate's failure of batch {batch_id} stands"
                                   f" until that batch is applied: {message or 'see the run that checked it'}"),
            )
        else:
            yield dg.AssetCheckResult(
                check_name=check_name(entity), asset_key=_asset_key(catalog, entity), passed=True,
                metadata={"batch_id": "none: nothing new landed in this run"},
                description="nothing new landed in this run: nothing to check",
            )


def _run_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, catalog: Catalog, system: System,
                entities: list[Entity]) -> Iterator[dg.AssetCheckResult]:
    run_id = context.run.run_id
    with warehouse.connect() as conn:
        runs = [r for r in batches.system_runs_of(conn, run_id) if r.system_id == system.id]
        if not runs:
            yield from _standing_results(conn, catalog, system, entities)
            return
        try:
            validator = GxValidator(warehouse.url())  # imports GX (seconds): only when there is a batch to check
        except Exception as err:
            text = redact(" ".join(str(err).split()))[:2000]
            message = f"the quality gate could not start Great Expectations: {text}"
            for run in runs:  # the audit tables say why nothing of these batches went on
                layer = batches.start_layer(conn, run, LAYER)
                for entity in entities:
                    record_entity(conn, layer_run_id=layer, run=run, entity=entity.name, layer=LAYER,
                                        status="failed", dagster_run_id=run_id, message=message)
                batches.finish_layer(conn, layer, "failed", message=message)
            # The message is masked; the original's text must not be chained. The failed layer is an event.
            raise dg.Failure(message, metadata=reported_by_events()) from None
        MaskedLog(context).info(f"quality gate: Great Expectations ready in {validator.startup_seconds:.1f}s"
                         f" (import {validator.import_seconds:.1f}s)")
        # A check reports once per run; with several batches of a system in one run, the last one's
        # result is reported to Dagster, and every batch has its own audit rows.
        results: dict[str, dg.AssetCheckResult] = {}
        with validator:
            for run in runs:
                verdicts = {v.entity: v for v in gate_batch(conn, catalog, run, entities, validator,
                                                            dagster_run_id=run_id)}
                for entity in entities:
                    verdict = verdicts[entity.name]
                    if verdict.message:  # failed, or passed with warnings
                        MaskedLog(context).warning(verdict.message)
                    previous = results.get(entity.name)
                    result = _result(catalog, entity, run, verdict, validator.startup_seconds)
                    if previous is not None and not previous.passed:
                        result = previous  # never hide an earlier batch's failure behind a later success
                    results[entity.name] = result
        MaskedLog(context).info("quality gate: " + json.dumps({e: r.passed for e, r in results.items()}))
        yield from results.values()
