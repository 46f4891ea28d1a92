"""The quality gate on a batch's landing data, before bronze: blocking Dagster asset checks.

Generic checks for every entity: each record of the batch has its primary key, and no key appears
twice in the batch. (Checks declared in metadata and Great Expectations come with the quality-gate
issue; this gate already stops bad keys from reaching silver, where they would break history.)
"""


from collections.abc import Iterator

import dagster as dg
import psycopg
from psycopg import sql

from ingestion.landing import LANDING_SCHEMA
from metadata.catalog import Catalog
from metadata.columns import Column
from metadata.models import Entity, ExplodePattern, System
from orchestration import audit
from orchestration.runtime import warehouse_url


def _key_expression(column: Column) -> sql.Composable:
    if column.source == "position":
        return sql.SQL("item.position")
    root = sql.SQL("item.value") if column.source == "item" else sql.SQL("landing.payload")
    return sql.SQL("{} #>> {}").format(root, sql.Literal("{" + ",".join(column.path) + "}"))


def key_check_query(catalog: Catalog, entity: Entity) -> sql.Composed:
    """Records of one batch, records missing a key part, and keys that occur more than once."""
    keys = [c for c in catalog.columns[entity.name] if c.primary_key]
    exprs = sql.SQL(", ").join(sql.SQL("{} as k{}").format(_key_expression(c), sql.Literal(i)) for i, c in enumerate(keys))
    names = sql.SQL(", ").join(sql.Identifier(f"k{i}") for i in range(len(keys)))
    missing = sql.SQL(" or ").join(sql.SQL("{} is null").format(sql.Identifier(f"k{i}")) for i in range(len(keys)))
    items = sql.SQL("")
    pattern = entity.bronze_pattern
    if isinstance(pattern, ExplodePattern):
        path = sql.Literal("{" + ",".join(pattern.list_path.split(".")) + "}")
        items = sql.SQL(
            " cross join lateral jsonb_array_elements(case when jsonb_typeof(landing.payload #> {p}) = 'array'"
            " then landing.payload #> {p} else '[]'::jsonb end) with ordinality as item(value, position)"
        ).format(p=path)
    return sql.SQL(
        "with keys as (select {exprs} from {table} as landing{items} where landing._batch_id = %(batch)s)"
        " select (select count(*) from keys), (select count(*) from keys where {missing}),"
        " (select count(*) from (select 1 from keys group by {names} having count(*) > 1) as duplicates)"
    ).format(exprs=exprs, table=sql.Identifier(LANDING_SCHEMA, catalog.landing_table(entity)), items=items,
             missing=missing, names=names)


def quality_checks(catalog: Catalog) -> list[dg.AssetChecksDefinition]:
    definitions = []
    for system in catalog.systems.values():
        entities = catalog.entities_of(system.id)
        if not entities:
            continue

        def make(system: System = system, entities: list[Entity] = entities) -> dg.AssetChecksDefinition:
            specs = [
                dg.AssetCheckSpec(
                    name=f"{e.name}_key_unique",
                    asset=dg.AssetKey([LANDING_SCHEMA, catalog.landing_table(e)]),
                    blocking=True,
                    description=f"every {e.name} record of the batch has its primary key "
                    f"({', '.join(catalog.primary_key(e))}), and no key occurs twice",
                )
                for e in entities
            ]

            @dg.multi_asset_check(specs=specs, name=f"quality_{system.id.lower()}")
            def _check(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
                yield from _run_checks(context, catalog, system, entities)

            return _check

        definitions.append(make())
    return definitions


def _run_checks(context, catalog: Catalog, system: System, entities: list[Entity]) -> Iterator[dg.AssetCheckResult]:  # type: ignore[no-untyped-def]
    run_id = context.run.run_id
    with psycopg.connect(warehouse_url(), autocommit=True) as conn:
        runs = [r for r in audit.system_runs_of(conn, run_id) if r.system_id == system.id]
        for run in runs:
            layer = audit.start_layer(conn, run, "quality")
            failed = 0
            for entity in entities:
                total, missing, duplicated = conn.execute(key_check_query(catalog, entity), {"batch": run.batch_id}).fetchone()
                passed = missing == 0 and duplicated == 0
                failed += not passed
                message = None if passed else f"{missing} record(s) without a key, {duplicated} key(s) occurring more than once"
                audit.record_entity(
                    conn, layer_run_id=layer, run=run, entity=entity.name, layer="quality",
                    status="succeeded" if passed else "failed", dagster_run_id=run_id, records_in=total, message=message,
                )
                yield dg.AssetCheckResult(
                    check_name=f"{entity.name}_key_unique",
                    asset_key=dg.AssetKey([LANDING_SCHEMA, catalog.landing_table(entity)]),
                    passed=bool(passed),
                    metadata={"batch_id": run.batch_id, "records": total, "records_without_key": missing,
                              "duplicated_keys": duplicated},
                    description=message,
                )
            audit.finish_layer(conn, layer, "failed" if failed else "succeeded")
            if failed:
                audit.finish_system_run(conn, run, "failed", message=f"quality gate failed for {failed} entity(ies)")
        if not runs:
            for entity in entities:
                yield dg.AssetCheckResult(
                    check_name=f"{entity.name}_key_unique",
                    asset_key=dg.AssetKey([LANDING_SCHEMA, catalog.landing_table(entity)]),
                    passed=True,
                    metadata={"batch_id": "none: nothing new landed in this run"},
                )
