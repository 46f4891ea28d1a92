"""Planning the quality gate: what to check in one entity's batch, as SQL queries and GX expectations
held as plain data (no GX import, so it is unit-tested on its own; `quality.gx` runs the plan).

For each entity the plan has a SQL query that flattens the batch's landed records into columns (one
row per entity row: a landed record, or for an exploded child entity one item of its list), so GX's
standard expectations apply to it as to any table:

- generic checks, for every entity: each primary-key column is present (`ExpectColumnValuesToNotBeNull`)
  and the key is unique in the batch (`ExpectColumnValuesToBeUnique` / `ExpectCompoundColumnsToBeUnique`);
  every attribute the entity model declares is there with its declared type: a `<column>__type`
  column holds the JSON kind of each value and `ExpectColumnValuesToBeInSet` allows only the kinds the
  declared type accepts. A child entity also needs its list (`list_path`) to be a JSON array in every
  record, checked on a second query with one row per landed record. An attribute a record may leave
  out (see below) must still be carried by some record of the batch (`present.<column>`:
  `ExpectColumnValuesToNotBeInSet` of `missing` on its kind column, judged by the report as "at least one
  row has the key"): a field the source renamed or dropped shows up. `attributes_present` in the
  entity's `quality` makes that an error, a warning (the default: the entity goes on, the audit row
  and the check say so) or off. A required attribute needs no such check: every record must carry it;
- checks the entity declares in metadata (`quality` in entities.json): `row_count` and
  `row_count_vs_previous_batch`, both `ExpectTableRowCountToBeBetween`. The comparison is with the
  previous successful batch (`quality.gate.previous_batch` finds it); an entity's first batch, and a
  previous batch with no rows, skip it (the notes say so).

JSON kinds (the `__type` columns) and which values fit which declared type are defined once, in
`metadata.value_types`, which bronze's casts follow too (so whatever passes the gate builds): `missing`
(no such key), `null`, `string`, `integer` (a number without fraction that fits a bigint: `1.0` is the
integer 1), `number` (any other number), `out_of_range` (a number a float attribute cannot hold),
`boolean`, `object`, `array`, and, for attributes declared as dates or timestamps, `date` / `timestamp`
(a string PostgreSQL reads as one; any other string stays `string`). Declared types accept:

    str -> string          int -> integer       float, Decimal -> integer, number     bool -> boolean
    date -> date           datetime -> timestamp      dict, list, Any, a nested model kept whole -> object, array

and an attribute that is Optional, has a default, or sits inside an Optional nested object may also
be `null` or `missing` (a source may leave out what it has no value for; absent and null are the same
value for bronze and silver). That such an attribute vanished from a whole batch is what
`present.<column>` reports.

A delete record (the entity's `deleted_when`, `metadata.deletes`) must carry the key but may leave out
any other attribute, required or not (a CDC delete often carries only the key): where it has no value,
its kind is SQL null, which GX's column expectations skip, and a presence check judges the other
records only. A value it does carry must still have its declared type (bronze casts it).

JSON paths are read with `metadata.columns.json_path_literal`, as bronze reads them, and a list's
items as bronze's `json_list_items` macro does (not a list: no items; positions from 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from pydantic import BaseModel

from ingestion.landing import LANDING_SCHEMA
from metadata.catalog import Catalog
from metadata.columns import Column, json_path_literal
from metadata.deletes import marker_sql
from metadata.entity_model import attributes
from metadata.models import Entity, ExplodePattern
from metadata.naming import MAX_IDENTIFIER_BYTES
from metadata.value_types import ANY_KIND, KINDS_BY_PG_TYPE, kind_sql

ROWS, RECORDS = "rows", "records"  # the two query assets of an entity: its rows, and (explode) its records
RECORD_NO, ITEM_NO = "_record_no", "_item_no"

@dataclass(frozen=True)
class PlannedExpectation:
    """One GX expectation, as data: which query it runs on, and what it means for the entity."""

    key: str  # unique within the entity, e.g. "attribute.address_city"
    asset: str  # ROWS or RECORDS
    expectation_type: str  # the class name in great_expectations.expectations
    kwargs: dict[str, Any]
    label: str  # what is checked, for a reader: "attribute address.city present with type string (text)"
    subject: str  # what a failure names: "attribute address.city"
    context: dict[str, Any] = field(default_factory=dict)  # facts needed to explain the outcome
    severity: str = "error"  # "error" fails the entity; "warning" is reported and lets it go on


@dataclass(frozen=True)
class PreviousBatch:
    """The entity's previous successful batch, which `row_count_vs_previous_batch` compares with."""

    batch_id: int
    rows: int


@dataclass(frozen=True)
class EntityPlan:
    entity: str
    batch_id: int
    queries: dict[str, str]  # asset (ROWS / RECORDS) -> SQL
    expectations: list[PlannedExpectation]
    unit: str  # what one row of ROWS is, for messages: "record" or "item"
    notes: list[str]  # checks that were skipped, and why
    index_columns: dict[str, list[str]]  # asset -> columns that locate a row (quoted in failure messages)


PRESENCE_EXPECTATION = "ExpectColumnValuesToNotBeInSet"
# "At least one row is not `missing`" as GX's share of rows: any share above zero. The report decides
# from the counts (rows minus unexpected), so this only keeps GX's own flag in line for batches under 10^12 rows.
PRESENCE_MOSTLY = 1e-12


def _path(path: Iterable[str]) -> sql.Composable:
    """The path's SQL literal, as bronze's macros have it (the one definition, in metadata.columns)."""
    return sql.SQL(json_path_literal(tuple(path)))


def _root(column: Column) -> sql.Composable:
    return sql.SQL("item.value") if column.source == "item" else sql.SQL("landing.payload")


def _json_value(column: Column) -> sql.Composable:
    """The jsonb at the column's path, or SQL NULL when the path does not exist."""
    return sql.SQL("({} #> {})").format(_root(column), _path(column.path))


def _text_value(column: Column) -> sql.Composable:
    if column.source == "position":
        return sql.SQL("item.position")
    return sql.SQL("({} #>> {})").format(_root(column), _path(column.path))


def _kind_expression(column: Column, *, pg_input_is_valid: bool) -> sql.Composable:
    """The value's JSON kind, judged by the one definition bronze's casts follow (metadata.value_types)."""
    return sql.SQL(kind_sql(column.pg_type, _json_value(column).as_string(), pg_input_is_valid=pg_input_is_valid))


def kind_column_names(columns: list[Column]) -> dict[str, str]:
    """Column name -> the name of its JSON-kind column: `<name>__type`, or `_type_<i>` where that would
    be too long for PostgreSQL or collide with another column."""
    taken = {c.name for c in columns} | {RECORD_NO, ITEM_NO}
    names: dict[str, str] = {}
    for i, c in enumerate(columns):
        name = f"{c.name}__type"
        if len(name.encode()) > MAX_IDENTIFIER_BYTES or name in taken:
            name = f"_type_{i}"
        taken.add(name)
        names[c.name] = name
    return names


def _list_source(entity: Entity) -> sql.Composable:
    assert isinstance(entity.bronze_pattern, ExplodePattern)
    path = _path(entity.bronze_pattern.list_path.split("."))
    # As bronze's json_list_items: a missing or non-list value has no items (the RECORDS query reports it),
    # positions count from 1.
    return sql.SQL(
        " cross join lateral jsonb_array_elements(case when jsonb_typeof(landing.payload #> {p}) = 'array'"
        " then landing.payload #> {p} else '[]'::jsonb end) with ordinality as item(value, position)"
    ).format(p=path)


def rows_query(catalog: Catalog, entity: Entity, batch_id: int, *, pg_input_is_valid: bool = True) -> str:
    """One row per entity row of the batch: `_record_no` (and `_item_no`), each column's value as text,
    and each JSON column's kind."""
    columns = catalog.columns[entity.name]
    kinds = kind_column_names(columns)
    explode = isinstance(entity.bronze_pattern, ExplodePattern)
    select = [sql.SQL("landing._record_no as {}").format(sql.Identifier(RECORD_NO))]
    if explode:
        select.append(sql.SQL("item.position as {}").format(sql.Identifier(ITEM_NO)))
    deleted = _deleted_sql(entity)
    for c in columns:
        select.append(sql.SQL("{} as {}").format(_text_value(c), sql.Identifier(c.name)))
        if c.source != "position":
            kind = _kind_expression(c, pg_input_is_valid=pg_input_is_valid)
            if deleted is not None and not c.primary_key:
                # A delete record may leave out any attribute but its key: no kind (null, which GX skips)
                # instead of `missing` / `null`. A value it does carry is still checked: bronze casts it.
                kind = sql.SQL("case when {} and coalesce(jsonb_typeof({}), 'null') = 'null' then null else {} end"
                               ).format(deleted, _json_value(c), kind)
            select.append(sql.SQL("{} as {}").format(kind, sql.Identifier(kinds[c.name])))
    query = sql.SQL("select {} from {} as landing{} where landing._batch_id = {}").format(
        sql.SQL(", ").join(select),
        sql.Identifier(LANDING_SCHEMA, catalog.landing_table(entity)),
        _list_source(entity) if explode else sql.SQL(""),
        sql.Literal(int(batch_id)),
    )
    return query.as_string()


def _deleted_sql(entity: Entity) -> sql.Composable | None:
    """True for a delete record of the entity (metadata.deletes: the definition bronze's `_deleted` uses)."""
    if entity.deleted_when is None or isinstance(entity.bronze_pattern, ExplodePattern):
        return None
    return sql.SQL(marker_sql(entity.deleted_when, "landing.payload"))


def list_kind_column(entity: Entity) -> str:
    assert isinstance(entity.bronze_pattern, ExplodePattern)
    return "list__type"


def records_query(catalog: Catalog, entity: Entity, batch_id: int) -> str:
    """One row per landed record of the batch with the JSON kind of the child entity's list."""
    assert isinstance(entity.bronze_pattern, ExplodePattern)
    path = _path(entity.bronze_pattern.list_path.split("."))
    return sql.SQL(
        "select landing._record_no as {no}, coalesce(jsonb_typeof(landing.payload #> {p}), 'missing') as {kind}"
        " from {table} as landing where landing._batch_id = {batch}"
    ).format(no=sql.Identifier(RECORD_NO), p=path, kind=sql.Identifier(list_kind_column(entity)),
             table=sql.Identifier(LANDING_SCHEMA, catalog.landing_table(entity)), batch=sql.Literal(int(batch_id))
             ).as_string()


def _nullable_along(model: type[BaseModel], path: tuple[str, ...]) -> bool:
    """True when the value at `path` may be null or absent: some field on the way is Optional or has
    a default. (columns.py marks every flattened nested column nullable, for bronze's sake; the gate
    needs to know whether the source may leave it out.)"""
    current: type[BaseModel] | None = model
    for part in path:
        attribute = next((a for a in attributes(current) if a.path[-1] == part), None) if current else None
        if attribute is None:
            return True
        if attribute.nullable:
            return True
        current = attribute.nested
    return False


def _model_of(catalog: Catalog, entity: Entity, column: Column) -> type[BaseModel]:
    if column.source == "record" and isinstance(entity.bronze_pattern, ExplodePattern):
        return catalog.models[entity.bronze_pattern.parent_entity]
    return catalog.models[entity.name]


def _index_columns(entity: Entity) -> list[str]:
    return [RECORD_NO, ITEM_NO] if isinstance(entity.bronze_pattern, ExplodePattern) else [RECORD_NO]


def plan_entity(catalog: Catalog, entity: Entity, batch_id: int, *, previous: PreviousBatch | None,
                pg_input_is_valid: bool = True) -> EntityPlan:
    """The queries and expectations of one entity's batch (no GX needed)."""
    columns = catalog.columns[entity.name]
    kinds = kind_column_names(columns)
    explode = isinstance(entity.bronze_pattern, ExplodePattern)
    unit = "item" if explode else "record"
    expectations: list[PlannedExpectation] = []
    notes: list[str] = []
    keys = [c for c in columns if c.primary_key]

    for c in keys:
        expectations.append(PlannedExpectation(
            f"key_present.{c.name}", ROWS, "ExpectColumnValuesToNotBeNull", {"column": c.name},
            f"primary key {c.name} present in every {unit}", f"primary key {c.name}",
        ))
    key_names = [c.name for c in keys]
    if len(keys) == 1:
        expectations.append(PlannedExpectation(
            "key_unique", ROWS, "ExpectColumnValuesToBeUnique", {"column": key_names[0]},
            f"primary key {key_names[0]} unique in the batch", f"primary key {key_names[0]}",
        ))
    elif keys:
        expectations.append(PlannedExpectation(
            "key_unique", ROWS, "ExpectCompoundColumnsToBeUnique",
            {"column_list": key_names, "ignore_row_if": "any_value_is_missing"},
            f"primary key ({', '.join(key_names)}) unique in the batch", f"primary key ({', '.join(key_names)})",
        ))

    for c in columns:
        if c.source == "position":
            continue
        allowed = list(KINDS_BY_PG_TYPE.get(c.pg_type, ANY_KIND))
        nullable = not c.primary_key and _nullable_along(_model_of(catalog, entity, c), c.path)
        accepted = allowed + (["null", "missing"] if nullable else [])
        where = f"the parent record's {'.'.join(c.path)}" if explode and c.source == "record" else ".".join(c.path)
        subject = f"attribute {where}"
        if nullable and entity.quality.attributes_present != "off":
            expectations.append(PlannedExpectation(
                f"present.{c.name}", ROWS, PRESENCE_EXPECTATION,
                {"column": kinds[c.name], "value_set": ["missing"], "mostly": PRESENCE_MOSTLY},
                f"{subject} carried by at least one {unit} of the batch", subject,
                {"presence": True}, severity=entity.quality.attributes_present,
            ))
        expectations.append(PlannedExpectation(
            f"attribute.{c.name}", ROWS, "ExpectColumnValuesToBeInSet",
            {"column": kinds[c.name], "value_set": accepted},
            f"{subject} present{' or null' if nullable else ''} with type {' or '.join(allowed)} ({c.pg_type})",
            subject, {"expected": allowed, "pg_type": c.pg_type, "value_column": c.name},
        ))

    if explode:
        assert isinstance(entity.bronze_pattern, ExplodePattern)
        list_path = entity.bronze_pattern.list_path
        expectations.append(PlannedExpectation(
            "list_present", RECORDS, "ExpectColumnValuesToBeInSet",
            {"column": list_kind_column(entity), "value_set": ["array"]},
            f"list {list_path} is an array in every record", f"list {list_path}", {"expected": ["array"]},
        ))

    bounds = entity.quality.row_count
    if bounds is not None:
        expectations.append(PlannedExpectation(
            "row_count", ROWS, "ExpectTableRowCountToBeBetween",
            {"min_value": bounds.min, "max_value": bounds.max},
            f"row count {_between(bounds.min, bounds.max)}", "row count",
            {"min": bounds.min, "max": bounds.max, "expected": _between(bounds.min, bounds.max)},
        ))
    versus = entity.quality.row_count_vs_previous_batch
    if versus is not None:
        if previous is None:
            notes.append("row_count_vs_previous_batch: skipped, no previous successful batch of this entity")
        elif previous.rows == 0:
            notes.append(f"row_count_vs_previous_batch: skipped, previous batch {previous.batch_id} had no rows")
        else:
            low = None if versus.min_percent is None else math.ceil(previous.rows * versus.min_percent / 100 - 1e-9)
            high = None if versus.max_percent is None else math.floor(previous.rows * versus.max_percent / 100 + 1e-9)
            percent = _between(_pct(versus.min_percent), _pct(versus.max_percent))
            expectations.append(PlannedExpectation(
                "row_count_vs_previous_batch", ROWS, "ExpectTableRowCountToBeBetween",
                {"min_value": low, "max_value": high},
                f"row count {percent} of previous batch {previous.batch_id} ({previous.rows} rows), "
                f"so {_between(low, high)}", "row count versus the previous batch",
                {"previous_batch_id": previous.batch_id, "previous_rows": previous.rows,
                 "min_percent": versus.min_percent, "max_percent": versus.max_percent, "min": low, "max": high,
                 "expected": f"{percent} ({_between(low, high).removeprefix('between ').replace(' and ', ' to ')})"},
            ))

    queries = {ROWS: rows_query(catalog, entity, batch_id, pg_input_is_valid=pg_input_is_valid)}
    index_columns = {ROWS: _index_columns(entity)}
    if explode:
        queries[RECORDS] = records_query(catalog, entity, batch_id)
        index_columns[RECORDS] = [RECORD_NO]
    return EntityPlan(entity.name, batch_id, queries, expectations, unit, notes, index_columns)


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{value:g}%"


def _between(low: Any, high: Any) -> str:
    if low is None:
        return f"at most {high}"
    if high is None:
        return f"at least {low}"
    return f"between {low} and {high}"

