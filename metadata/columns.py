"""The columns a bronze pattern derives from an entity model: name, JSON path, type, key, SCD type,
description; and the batch columns every landing and bronze row carries.

This is the one place that knows the patterns; the dbt generator, the quality gate and the validator
all call `bronze_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from metadata.entity_model import Attribute, EntityModelError, attributes
from metadata.models import CopyPattern, ExplodePattern, FlattenPattern
from metadata.naming import to_identifier
from metadata.value_types import cast_sql, untagged_sql

POSITION_COLUMN = "position"


JSON_AT_PATH = "{json}"  # placeholder in `untag_sql`: the jsonb at the column's path, as bronze reads it


def json_path_literal(path: tuple[str, ...] | list[str]) -> str:
    """The SQL string literal of a JSON path as PostgreSQL's text[] (for `#>` / `#>>`), for any key.

    The one definition of it: the quality gate and dbt's bronze macros (through `macro_args`) both read
    paths with it, so they cannot disagree on a key with a comma, brace, quote, space or backslash.
    Each key is double-quoted for the array syntax (escaping `\\` and `"`), then the whole is an SQL
    string (doubling `'`); with a backslash in it, an E'' string, so it reads the same whatever
    `standard_conforming_strings` says.
    """
    array = "{" + ",".join('"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' for key in path) + "}"
    quoted = array.replace("'", "''")
    if "\\" in quoted:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return f"'{quoted}'"


@dataclass(frozen=True)
class Column:
    name: str  # PostgreSQL column name
    pg_type: str
    path: tuple[str, ...]  # JSON path, from the record root ("record") or the list item ("item")
    source: Literal["record", "item", "position"]
    primary_key: bool
    scd_type: int
    nullable: bool
    # For the docs (dbt, Dagster) only: not part of the SQL, so two columns that differ only here are equal.
    description: str = field(default="", compare=False)
    # The value may be a MongoDB Extended JSON tagged object whose tagged value is the column's (a `mongodb`
    # system's scalar columns): read through value_types.untagged_sql by the gate and by bronze alike.
    extended_json: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.pg_type,
            "path": list(self.path),
            "source": self.source,
            "primary_key": self.primary_key,
            "scd_type": self.scd_type,
        }

    def macro_args(self) -> dict[str, object]:
        """The column as dbt's bronze macros get it: with `path_sql`, so they never build a path of their own,
        and `cast_sql`, the cast of the value's text (around `value_types.JSON_VALUE`) that matches what the
        quality gate lets through (metadata.value_types)."""
        return {**self.as_dict(), "path_sql": json_path_literal(self.path), "cast_sql": cast_sql(self.pg_type),
                "untag_sql": untagged_sql(JSON_AT_PATH) if self.extended_json else ""}  # "": none (Jinja has no null)


@dataclass(frozen=True)
class SystemColumn:
    """A column the platform adds to every table of a layer, whatever the entity."""

    name: str
    pg_type: str
    description: str


# What bronze carries over from landing (the bronze macro selects them first, in this order).
BATCH_COLUMNS: tuple[SystemColumn, ...] = (
    SystemColumn("_batch_id", "bigint", "Batch that delivered the row: one delivery of the source system, landed by "
                 "one run (audit.system_run.batch_id)."),
    SystemColumn("_batch_timestamp", "timestamptz", "Point in time the batch's delivery stands for (for JSON files: "
                 "the delivery folder's date); silver's valid_from and valid_to are such timestamps."),
    SystemColumn("_run_id", "varchar", "Id of the Dagster run that landed the batch."),
    SystemColumn("_loaded_at", "timestamptz", "When the row was written to landing; bronze picks up the landing rows "
                 "newer than the newest it holds."),
    SystemColumn("_record_no", "bigint", "Position of the record in the delivery (1 = first); within a batch, the "
                 "last record of a key wins in silver."),
)
# Every landing table, by column name: the batch columns and the record itself.
LANDING_COLUMNS: dict[str, SystemColumn] = {
    c.name: c
    for c in (*BATCH_COLUMNS, SystemColumn("payload", "jsonb", "The record exactly as the source returned it (JSON)."))
}
# What the scd2_history materialization (dbt_project/macros/silver.sql) adds after the entity's columns, in
# table order.
SILVER_COLUMNS: tuple[SystemColumn, ...] = (
    SystemColumn("_scd2_hash", "text", "md5 of the values of the version's SCD2 attributes as their declared types "
                 "(not their text: 1.0 = 1.00 for a numeric, a timestamp as an instant); a new batch with another "
                 "hash for the key closes this version and opens a new one."),
    SystemColumn("valid_from", "timestamptz", "Batch timestamp from which this version holds (inclusive)."),
    SystemColumn("valid_to", "timestamptz", "Batch timestamp up to which this version held (exclusive); null for the "
                 "current version of the key."),
    SystemColumn("_opened_by_batch_id", "bigint", "Batch that opened this version."),
    SystemColumn("_closed_by_batch_id", "bigint", "Batch that closed this version (the key changed, was missing from "
                 "a full load's batch, or came as a delete record); null while current."),
    SystemColumn("_modified_by_batch_id", "bigint", "Last batch that changed this row (opened or closed it, or "
                 "overwrote an SCD1 attribute)."),
    SystemColumn("_modified_by_run_id", "text", "Run that last changed this row (the Dagster run id, or dbt's "
                 "invocation id outside Dagster)."),
)
# Column names the platform uses for its own columns in some layer; an entity's column may not take one.
# Besides these, every name starting with '_' is kept for the platform (the quality gate's `_record_no`,
# `_item_no`, `_type_<n>`, names added later). `position` is reserved where the platform generates it: in
# an exploded entity whose items have no key of their own (see bronze_columns).
RESERVED_COLUMNS: frozenset[str] = frozenset(
    c.name for c in (*LANDING_COLUMNS.values(), *SILVER_COLUMNS)
)


def reserved_problem(name: str, *, generates_position: bool = False) -> str | None:
    """Why an entity's column may not be called `name` (the platform's own column), or None."""
    if name in RESERVED_COLUMNS:
        return f"{name!r} is reserved for the platform's own column of that name; rename the field (Field(alias=...))"
    if name.startswith("_"):
        return f"{name!r} starts with '_', reserved for the platform's own columns; rename the field"
    if generates_position and name == POSITION_COLUMN:
        return (f"{name!r} is reserved here: the platform generates it for list items without a key of their own; "
                "rename the field or mark the item's key Key[...]")
    return None


def _described(attr: Attribute, source: Literal["record", "item"]) -> str:
    """The model's description of the field or, for a model without one, where the value comes from."""
    where = "the source record" if source == "record" else "each item of the list"
    return attr.description or f"{'.'.join(attr.path)} of {where}"


def _flat(
    attrs: list[Attribute],
    source: Literal["record", "item"],
    *,
    expand: bool,
    within: tuple[type[BaseModel], ...] = (),
) -> list[Column]:
    """Columns of `attrs`; nested models are expanded (path joined by '_') or kept as JSONB.

    `within` holds the nested models being expanded, so a model that contains itself is reported
    instead of recursing forever.
    """
    columns: list[Column] = []
    for attr in attrs:
        if attr.nested is not None and expand:
            if attr.nested in within:
                raise EntityModelError(
                    f"field {'.'.join(attr.path)!r} nests {attr.nested.__name__} inside itself, which cannot be "
                    "flattened into columns; type it as dict (one JSONB column) or use the copy pattern"
                )
            inner = attributes(attr.nested, prefix=attr.path)
            # A nested object's key marks count only for itself, not for the entity.
            columns += [
                Column(c.name, c.pg_type, c.path, source, attr.primary_key and c.primary_key, c.scd_type, True,
                       c.description)
                for c in _flat(inner, source, expand=True, within=(*within, attr.nested))
            ]
            continue
        columns.append(
            Column(
                name=to_identifier("_".join(attr.path)),
                pg_type="jsonb" if attr.nested is not None else attr.pg_type,
                path=attr.path,
                source=source,
                primary_key=attr.primary_key,
                scd_type=attr.scd_type,
                nullable=attr.nullable,
                description=_described(attr, source),
            )
        )
    return columns


def bronze_columns(
    pattern: CopyPattern | FlattenPattern | ExplodePattern,
    model: type[BaseModel],
    *,
    parent_model: type[BaseModel] | None = None,
    parent_pattern: CopyPattern | FlattenPattern | ExplodePattern | None = None,
) -> list[Column]:
    """Columns of one entity in bronze (and silver), in order, for its pattern."""
    if isinstance(pattern, CopyPattern):
        return _flat(attributes(model), "record", expand=False)
    if isinstance(pattern, FlattenPattern):
        return _flat(attributes(model), "record", expand=True)
    if parent_model is None or parent_pattern is None or isinstance(parent_pattern, ExplodePattern):
        raise EntityModelError("an explode pattern needs a parent entity with a copy or flatten pattern")
    parent_keys = [
        Column(c.name, c.pg_type, c.path, "record", True, 2, False,
               f"{c.description} Here: the key of the parent record whose list holds the item.")
        for c in bronze_columns(parent_pattern, parent_model)
        if c.primary_key
    ]
    items = _flat(attributes(model), "item", expand=True)
    if not any(c.primary_key for c in items):
        position = "Position of the item in its list (1 = first); it keys the item, which has no key of its own."
        items.insert(0, Column(POSITION_COLUMN, "integer", (), "position", True, 2, False, position))
    return parent_keys + items
