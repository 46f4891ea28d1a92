"""Generate the dbt files that follow from metadata: landing sources, and one thin bronze and silver
model (SQL + YAML with its data tests) per entity.

The YAML lists every column of each table with its PostgreSQL type and a description (the entity
model's, or the platform's for the columns it adds), so `dbt docs` and the Dagster UI show the whole
table an analyst queries, not only the tested columns.

Generated files live in `generated/` folders that git ignores; `dataplatform generate` (and every
command that runs dbt) rewrites them, so they never drift from metadata and are never edited by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from metadata.catalog import Catalog
from metadata.columns import BATCH_COLUMNS, LANDING_COLUMNS, SILVER_COLUMNS, Column, SystemColumn, json_path_literal
from metadata.deletes import DELETED_BRONZE_COLUMN, marker_sql
from metadata.models import Entity, ExplodePattern
from metadata.naming import dbt_model_name, landing_table

# DATAPLATFORM_DBT_PROJECT_DIR: a copy of the project elsewhere (the benchmark's, whose metadata adds a system),
# so that files generated from other metadata never replace the ones a run in this checkout is using.
DBT_PROJECT_DIR = Path(os.environ.get("DATAPLATFORM_DBT_PROJECT_DIR")
                       or Path(__file__).resolve().parent.parent / "dbt_project")
HEADER = "-- Generated from metadata by `dataplatform generate`: do not edit.\n"
YAML_HEADER = "# Generated from metadata by `dataplatform generate`: do not edit.\n"

def _jinja(value: object) -> str:
    """A Jinja literal for a string, or lists/dicts of strings, numbers and booleans (Jinja reads JSON's
    true/false). Every metadata value written into a model file goes through here: inside a JSON string a
    quote is escaped and braces are only characters, so no value can end the `{{ ... }}` it sits in."""
    return json.dumps(value, ensure_ascii=False)


def _text(text: str) -> str:
    """A description as dbt shows it: dbt renders descriptions as Jinja (with env_var and the like), so
    each '{' is written as a Jinja expression that renders '{'; the manifest, the docs and the Dagster UI
    then show the text exactly as declared, and no description can run or read anything."""
    return text.replace("{", "{{ '{' }}")


def _column(name: str, data_type: str, description: str, tests: list[object] | None = None) -> dict[str, object]:
    """One column's properties; `data_tests` only where the column is tested. `quote: true` makes dbt's
    generic tests quote the name (a column may be called `user` or `order`)."""
    return ({"name": name, "description": _text(description), "data_type": data_type, "quote": True}
            | ({"data_tests": tests} if tests else {}))


def _system_columns(columns: tuple[SystemColumn, ...], tested: tuple[str, ...] = ()) -> list[dict[str, object]]:
    """The columns the platform adds to a layer; those named in `tested` are tested not null."""
    return [_column(c.name, c.pg_type, c.description, ["not_null"] if c.name in tested else None) for c in columns]


def _entity_columns(columns: list[Column], test_where: str | None = None) -> list[dict[str, object]]:
    """The entity's columns; its key is tested not null (on the rows `test_where` selects, if given)."""
    not_null: object = {"not_null": {"config": {"where": test_where}}} if test_where else "not_null"
    return [_column(c.name, c.pg_type, c.description, [not_null] if c.primary_key else None) for c in columns]


def _unapplied_batches(entity: Entity) -> str:
    """The condition on a bronze model's rows that selects the batches its silver has not applied yet: the rows
    a build has just added (dbt build tests bronze before it builds silver), found by the _batch_id index. Bronze
    keeps every batch, so its key tests on the whole table would read all of its history every run, to re-prove
    what the same tests proved for each batch when it arrived (and bronze rows never change afterwards)."""
    return ("_batch_id in (select l.batch_id from audit.landed_batch as l"
            f" where l.system_id = '{entity.system_id}' and not exists (select 1 from audit.silver_applied_batch as a"
            f" where a.system_id = l.system_id and a.entity = '{entity.name}' and a.batch_id = l.batch_id))")


def _sources(catalog: Catalog) -> dict[str, object]:
    tables = [
        {
            "name": landing_table(s.id, endpoint),
            "description": _text(f"What system {s.id}, {s.name}, returned from its endpoint `{endpoint}`, as-is: one "
                                 "row per record, the record in `payload`, with the batch columns that link it to "
                                 "the audit tables."),
            "loaded_at_field": "_loaded_at",
            "columns": _system_columns(tuple(LANDING_COLUMNS.values())),
        }
        for s in catalog.systems.values()
        for endpoint in s.endpoints()
    ]
    return {"version": 2, "sources": [{"name": "landing", "schema": "landing", "tables": tables}]}


def _bronze(catalog: Catalog, entity: Entity) -> tuple[str, dict[str, object]]:
    columns = catalog.columns[entity.name]
    pattern = entity.bronze_pattern
    list_path = pattern.list_path if isinstance(pattern, ExplodePattern) else None
    sql = (
        HEADER
        + "{{ config(materialized='incremental', incremental_strategy='batch_replace', unique_key='_batch_id',\n"
        + f"          alias={_jinja(catalog.table(entity))}, on_schema_change='append_new_columns',\n"
        + "          indexes=[{'columns': ['_batch_id']}, {'columns': ['_loaded_at']}]) }}\n"
        + "{{ bronze_entity(\n"
        + f"    source('landing', {_jinja(catalog.landing_table(entity))}),\n"
        + f"    pattern={_jinja(pattern.type)}, system_id={_jinja(entity.system_id)}, entity={_jinja(entity.name)},\n"
        + f"    list_path_sql={_jinja(json_path_literal(list_path.split('.'))) if list_path else 'none'},\n"
        + (f"    deleted_sql={_jinja(marker_sql(entity.deleted_when))},\n" if entity.deleted_when else "")
        + f"    columns={_jinja([c.macro_args() for c in columns])}\n"
        + ") }}\n"
    )
    model = {
        "name": dbt_model_name("bronze", entity.system_id, entity.name),
        "description": _text(f"{entity.description} Bronze ({pattern.type}), append-only, one set of rows per batch."),
        "columns": _system_columns(BATCH_COLUMNS, tested=("_batch_id",))
        + _entity_columns(columns, test_where=_unapplied_batches(entity))
        + (_system_columns((DELETED_BRONZE_COLUMN,)) if entity.deleted_when else []),
    }
    return sql, {"version": 2, "models": [model]}


def _silver(catalog: Catalog, entity: Entity) -> tuple[str, dict[str, object]]:
    columns = catalog.columns[entity.name]
    key = [c.name for c in columns if c.primary_key]
    scd1 = [c.name for c in columns if c.scd_type == 1 and not c.primary_key]
    scd2 = [{"name": c.name, "type": c.pg_type} for c in columns if c.scd_type == 2 and not c.primary_key]
    marker = entity.deleted_when
    sql = (
        HEADER
        + "{{ config(materialized='scd2_history',\n"
        + f"          alias={_jinja(catalog.table(entity))}, system_id={_jinja(entity.system_id)},\n"
        + f"          entity={_jinja(entity.name)}, load_type={_jinja(entity.load_type)},\n"
        + f"          primary_key={_jinja(key)}, scd1_columns={_jinja(scd1)}) }}}}\n"
        + "{{ silver_stage(\n"
        + f"    ref({_jinja(dbt_model_name('bronze', entity.system_id, entity.name))}),\n"
        + f"    primary_key={_jinja(key)},\n"
        + f"    columns={_jinja([c.name for c in columns])},\n"
        + f"    scd2_columns={_jinja(scd2)}"
        + (",\n    deletes=true\n" if entity.deleted_when else "\n")
        + ") }}\n"
    )
    model = {
        "name": dbt_model_name("silver", entity.system_id, entity.name),
        "description": _text(f"{entity.description} Silver: SCD2 history ({entity.load_type} load); "
                             f"SCD1 attributes: {', '.join(scd1) or 'none'}."
                             + (f" A record whose {marker.field} is {' or '.join(map(json.dumps, marker.values()))}"
                                " is a delete: it closes its key's current version." if marker else "")),
        "data_tests": [
            {"one_current_version": {"arguments": {"primary_key": key}}},
            {"versions_do_not_overlap": {"arguments": {"primary_key": key}}},
        ],
        "columns": _entity_columns(columns)
        + _system_columns(SILVER_COLUMNS, tested=("valid_from", "_opened_by_batch_id")),
    }
    return sql, {"version": 2, "models": [model]}


def _write(path: Path, text: str, written: list[Path]) -> None:
    """Write only when the content changes, so dbt's partial parsing stays quick."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    written.append(path)


def generate(catalog: Catalog, *, project_dir: Path = DBT_PROJECT_DIR) -> list[Path]:
    """Write every generated dbt file for `catalog`, delete stale ones; return the files kept."""
    written: list[Path] = []
    dump = lambda data: YAML_HEADER + yaml.safe_dump(data, sort_keys=False, width=120)  # noqa: E731
    _write(project_dir / "models" / "landing" / "generated" / "__sources.yml", dump(_sources(catalog)), written)
    for entity in catalog.entities.values():
        for layer, build in (("bronze", _bronze), ("silver", _silver)):
            sql, properties = build(catalog, entity)
            stem = project_dir / "models" / layer / "generated" / dbt_model_name(layer, entity.system_id, entity.name)
            _write(stem.with_suffix(".sql"), sql, written)
            _write(stem.with_suffix(".yml"), dump(properties), written)
    for folder in ("landing", "bronze", "silver"):
        for stale in (project_dir / "models" / folder / "generated").glob("*"):
            if stale not in written:
                stale.unlink()
    return written
