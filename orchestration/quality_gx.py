"""The quality gate, checked with Great Expectations 1.x: one entity of one batch at a time, in landing.

For each entity the gate builds a SQL query that flattens the batch's landed records into columns
(one row per entity row: a landed record, or for an exploded child entity one item of its list), so
GX's standard expectations apply to it as to any table:

- generic checks, for every entity: each primary-key column is present (`ExpectColumnValuesToNotBeNull`)
  and the key is unique in the batch (`ExpectColumnValuesToBeUnique` / `ExpectCompoundColumnsToBeUnique`);
  every attribute the entity model declares is there with its declared type: a `<column>__type`
  column holds the JSON kind of each value and `ExpectColumnValuesToBeInSet` allows only the kinds the
  declared type accepts. A child entity also needs its list (`list_path`) to be a JSON array in every
  record, checked on a second query with one row per landed record;
- checks the entity declares in metadata (`quality` in entities.json): `row_count` and
  `row_count_vs_previous_batch`, both `ExpectTableRowCountToBeBetween`.

JSON kinds (the `__type` columns): `missing` (no such key), `null`, `string`, `integer` (a number
without fraction that fits a bigint), `number` (any other number), `boolean`, `object`, `array`, and,
for attributes declared as dates or timestamps, `date` / `timestamp` (a string PostgreSQL reads as
one; any other string stays `string`). Declared types accept:

    str -> string          int -> integer       float, Decimal -> integer, number     bool -> boolean
    date -> date           datetime -> timestamp      dict, list, Any, a nested model kept whole -> object, array

and an attribute that is Optional, has a default, or sits inside an Optional nested object may also
be `null` or `missing` (a source may leave out what it has no value for; that an Optional attribute
vanished from a whole batch is therefore not detectable, and not reported).

"Previous batch" for `row_count_vs_previous_batch` is the previous *successful* batch of the entity:
the latest batch with an older batch timestamp whose latest quality row for the entity in
`audit.entity_layer_run` succeeded; its count is that row's `records_in` (what the gate counted then;
landing is append-only, so it equals the landed rows). An entity's first batch, and a previous batch
with no rows, skip the comparison (the outcome says so).

GX costs: importing it takes ~3-4 s (paid once per process, and only when there is a batch to check),
an ephemeral context with one data source ~0.1 s, each entity's validation ~0.05-0.1 s. So one
`GxValidator` (context + data source) serves a whole check execution; never one per entity.

Planning (the queries and the expectations, as plain data) needs no GX import and is unit-tested
on its own; `GxValidator` is the only part that imports GX.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel

from ingestion.landing import LANDING_SCHEMA
from metadata.catalog import Catalog
from metadata.columns import Column
from metadata.entity_model import attributes
from metadata.models import Entity, ExplodePattern
from metadata.naming import MAX_IDENTIFIER_BYTES
from orchestration import audit

LAYER = "quality"
ROWS, RECORDS = "rows", "records"  # the two query assets of an entity: its rows, and (explode) its records
RECORD_NO, ITEM_NO = "_record_no", "_item_no"
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}  # for failed expectations
# The first pass: BASIC still reports counts (element_count, unexpected_count, a row count's
# observed_value), and with no examples asked for, its "unexpected values" query is a LIMIT 0 that
# reads nothing. (SUMMARY on a passing expectation costs extra full scans for nothing: unexpected
# values with a LIMIT that finds none, and the unexpected index list.) BOOLEAN_ONLY drops the counts.
CHECK_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
_COUNT_ONLY_EXPECTATIONS = ("ExpectTableRowCountToBeBetween",)  # the first pass already has all they report
MAX_EXAMPLES = 5  # record numbers / values quoted in a message

# The JSON kinds a declared PostgreSQL type accepts (see the module docstring).
KINDS_BY_PG_TYPE: dict[str, tuple[str, ...]] = {
    "text": ("string",),
    "bigint": ("integer",),
    "integer": ("integer",),
    "double precision": ("integer", "number"),
    "numeric": ("integer", "number"),
    "boolean": ("boolean",),
    "date": ("date",),
    "timestamptz": ("timestamp",),
    "jsonb": ("object", "array"),
}
_STRING_KIND = {"date": "date", "timestamptz": "timestamp"}  # strings PostgreSQL must be able to read as these
# Used where pg_input_is_valid (PostgreSQL 16+) is missing: ISO dates and timestamps, as sources send them.
_ISO_PATTERNS = {
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "timestamptz": r"^\d{4}-\d{2}-\d{2}([ T]\d{2}[:]\d{2}([:]\d{2}([.]\d+)?)?)?\s*(Z|[+-]\d{2}([:]?\d{2})?)?$",
}
_BIGINT_MAX = 9223372036854775807


# ------------------------------------------------------------------------------------------- planning


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


@dataclass(frozen=True)
class PreviousBatch:
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


def _path_literal(path: Iterable[str]) -> sql.Literal:
    return sql.Literal("{" + ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in path) + "}")


def _root(column: Column) -> sql.Composable:
    return sql.SQL("item.value") if column.source == "item" else sql.SQL("landing.payload")


def _json_value(column: Column) -> sql.Composable:
    """The jsonb at the column's path, or SQL NULL when the path does not exist."""
    return sql.SQL("({} #> {})").format(_root(column), _path_literal(column.path))


def _text_value(column: Column) -> sql.Composable:
    if column.source == "position":
        return sql.SQL("item.position")
    return sql.SQL("({} #>> {})").format(_root(column), _path_literal(column.path))


def _kind_expression(column: Column, *, pg_input_is_valid: bool) -> sql.Composable:
    value = _json_value(column)
    number = sql.SQL(
        "case when {v}::numeric = trunc({v}::numeric) and abs({v}::numeric) <= {max} then 'integer' else 'number' end"
    ).format(v=value, max=sql.Literal(_BIGINT_MAX))
    string: sql.Composable = sql.Literal("string")
    if column.pg_type in _STRING_KIND:
        text = sql.SQL("({} #>> '{{}}')").format(value)
        valid = (
            sql.SQL("pg_input_is_valid({}, {})").format(text, sql.Literal(column.pg_type))
            if pg_input_is_valid
            else sql.SQL("{} ~ {}").format(text, sql.Literal(_ISO_PATTERNS[column.pg_type]))
        )
        string = sql.SQL("case when {} then {} else 'string' end").format(valid, sql.Literal(_STRING_KIND[column.pg_type]))
    return sql.SQL(
        "coalesce(case jsonb_typeof({v}) when 'number' then {number} when 'string' then {string}"
        " else jsonb_typeof({v}) end, 'missing')"
    ).format(v=value, number=number, string=string)


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
    path = _path_literal(entity.bronze_pattern.list_path.split("."))
    # Bronze reads a missing or non-list value as an empty list; the RECORDS query reports it.
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
    for c in columns:
        select.append(sql.SQL("{} as {}").format(_text_value(c), sql.Identifier(c.name)))
        if c.source != "position":
            select.append(sql.SQL("{} as {}").format(_kind_expression(c, pg_input_is_valid=pg_input_is_valid),
                                                     sql.Identifier(kinds[c.name])))
    query = sql.SQL("select {} from {} as landing{} where landing._batch_id = {}").format(
        sql.SQL(", ").join(select),
        sql.Identifier(LANDING_SCHEMA, catalog.landing_table(entity)),
        _list_source(entity) if explode else sql.SQL(""),
        sql.Literal(int(batch_id)),
    )
    return query.as_string()


def list_kind_column(entity: Entity) -> str:
    assert isinstance(entity.bronze_pattern, ExplodePattern)
    return "list__type"


def records_query(catalog: Catalog, entity: Entity, batch_id: int) -> str:
    """One row per landed record of the batch with the JSON kind of the child entity's list."""
    assert isinstance(entity.bronze_pattern, ExplodePattern)
    path = _path_literal(entity.bronze_pattern.list_path.split("."))
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
        allowed = list(KINDS_BY_PG_TYPE.get(c.pg_type, ("string", "integer", "number", "boolean", "object", "array")))
        nullable = not c.primary_key and _nullable_along(_model_of(catalog, entity, c), c.path)
        accepted = allowed + (["null", "missing"] if nullable else [])
        where = f"the parent record's {'.'.join(c.path)}" if explode and c.source == "record" else ".".join(c.path)
        subject = f"attribute {where}"
        expectations.append(PlannedExpectation(
            f"attribute.{c.name}", ROWS, "ExpectColumnValuesToBeInSet",
            {"column": kinds[c.name], "value_set": accepted},
            f"{subject} present{' or null' if nullable else ''} with type {' or '.join(allowed)} ({c.pg_type})",
            subject, {"expected": allowed, "pg_type": c.pg_type},
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


# ------------------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class ExpectationOutcome:
    key: str
    label: str
    expectation_type: str
    success: bool
    observed: dict[str, Any]  # the observed values GX reported (counts, kinds, examples, row count)
    summary: str  # what was seen; for a failure, the sentence that goes into the audit message


@dataclass(frozen=True)
class EntityVerdict:
    entity: str
    batch_id: int
    passed: bool
    rows: int  # entity rows in the batch (records, or items of an exploded list)
    outcomes: list[ExpectationOutcome]
    notes: list[str]
    message: str | None  # None when passed; else every failed expectation with what was observed
    seconds: float = 0.0

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def _examples(values: list[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_EXAMPLES])
    return shown + (", ..." if len(values) > MAX_EXAMPLES else "")


def _where(result: dict[str, Any], unit: str) -> str:
    """'landing records #3, #17' (or 'record #3 item 2') from GX's partial unexpected index list."""
    rows = result.get("partial_unexpected_index_list") or []
    places = []
    for row in rows:
        if not isinstance(row, dict) or RECORD_NO not in row:
            continue
        place = f"#{row[RECORD_NO]}" + (f" item {row[ITEM_NO]}" if row.get(ITEM_NO) is not None else "")
        if place not in places:
            places.append(place)
    if not places:
        return ""
    noun = "landing record" if len(places) == 1 else "landing records"
    return f" ({noun} {_examples(places)})"


def describe(planned: PlannedExpectation, result: dict[str, Any], success: bool, unit: str) -> tuple[str, dict[str, Any]]:
    """The sentence for one expectation's outcome, and its observed values as plain data."""
    units = "records" if planned.asset == RECORDS else f"{unit}s"
    total, bad = result.get("element_count"), result.get("unexpected_count") or 0
    if planned.expectation_type == "ExpectTableRowCountToBeBetween":
        observed = {"row_count": result.get("observed_value"),
                    **{k: v for k, v in planned.context.items() if k != "expected"}}
        text = f"{planned.subject}: {result.get('observed_value')} {units}"
        if "previous_rows" in planned.context and planned.context["previous_rows"]:
            share = 100 * (result.get("observed_value") or 0) / planned.context["previous_rows"]
            observed["percent_of_previous"] = round(share, 1)
            text += (f", {share:.1f}% of the {planned.context['previous_rows']} of previous batch"
                     f" {planned.context['previous_batch_id']}")
        return (text + ("" if success else f"; expected {planned.context['expected']}")), observed
    observed = {"rows": total, "unexpected": bad}
    where = _where(result, unit)
    if planned.expectation_type == "ExpectColumnValuesToNotBeNull":
        if not bad:
            return f"{planned.subject}: present in all {total} {units}", observed
        return f"{planned.subject}: {bad} of {total} {units} without a value{where}", observed
    if planned.expectation_type in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
        values = result.get("partial_unexpected_list") or []
        shown = []
        for v in values:
            v = tuple(v.values()) if isinstance(v, dict) else v
            if v not in shown:
                shown.append(v)
        observed["duplicated_keys"] = [list(v) if isinstance(v, tuple) else v for v in shown]
        if not bad:
            return f"{planned.subject}: unique in all {total} {units}", observed
        keys = f", duplicated keys: {_examples(shown)}" if shown else ""
        return f"{planned.subject}: {bad} of {total} {units} share a key with another{keys}{where}", observed
    # ExpectColumnValuesToBeInSet on a kind column
    seen = [(c["value"], c["count"]) for c in result.get("partial_unexpected_counts") or []]
    observed["unexpected_types"] = {str(k): n for k, n in seen}
    if not bad:
        return f"{planned.subject}: all {total} {units} as declared", observed
    kinds = ", ".join(str(k) for k, _ in seen) or "?"
    verb = "are missing it or have the wrong type" if planned.key != "list_present" else "have no list there"
    expected = " or ".join(planned.context.get("expected", []))
    return f"{planned.subject}: {bad} of {total} {units} {verb}: found {kinds}, expected {expected}{where}", observed


def verdict(plan: EntityPlan, results: dict[str, tuple[bool, dict[str, Any]]], *, seconds: float = 0.0) -> EntityVerdict:
    """Fold GX's results (expectation key -> (success, result dict)) into the entity's verdict."""
    outcomes = []
    rows = 0
    for planned in plan.expectations:
        success, result = results[planned.key]
        summary, observed = describe(planned, result, success, plan.unit)
        outcomes.append(ExpectationOutcome(planned.key, planned.label, planned.expectation_type, success, observed, summary))
        if planned.asset == ROWS and result.get("element_count") is not None:
            rows = int(result["element_count"])
        elif planned.expectation_type == "ExpectTableRowCountToBeBetween" and result.get("observed_value") is not None:
            rows = int(result["observed_value"])
    failed = [o for o in outcomes if not o.success]
    message = None
    if failed:
        message = (f"quality gate failed for {plan.entity} (batch {plan.batch_id}), "
                   f"{len(failed)} expectation(s): " + "; ".join(o.summary for o in failed))
    return EntityVerdict(plan.entity, plan.batch_id, not failed, rows, outcomes, plan.notes, message, seconds)


def error_verdict(entity: Entity, batch_id: int, error: BaseException, *, secret: str | None = None) -> EntityVerdict:
    """A check that could not run fails its entity: nothing unchecked goes on to bronze."""
    text = " ".join(f"{type(error).__name__}: {error}".split())[:2000]
    if secret:
        text = text.replace(secret, "***")
    message = f"quality gate could not check {entity.name} (batch {batch_id}): {text}"
    return EntityVerdict(entity.name, batch_id, False, 0, [], [], message)


# ------------------------------------------------------------------------------------------- GX


def gx_connection_string(url: str) -> str:
    """The warehouse URL for SQLAlchemy, on psycopg 3 (the driver the platform depends on)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError("the warehouse URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


class GxValidator:
    """One ephemeral GX context with one PostgreSQL data source, for a whole check execution.

    The data source materializes each query asset into a temporary table (`create_temp_table`): GX
    runs ~25 queries per entity, and reading the records' JSON once instead of in every one of them
    makes a check ~5x faster on big batches (200,000 vehicles: 1.8 s instead of 10.6 s). A
    `ValidationDefinition` loads its batch once (`Batch.validate` would load it a second time), and the
    temporary tables are discarded once its suite has run; `close()` releases the connection.
    """

    def __init__(self, url: str) -> None:
        started = time.perf_counter()
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.import_seconds = time.perf_counter() - started
        self._gx = gx
        self._password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        config = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        )
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.source = self.context.data_sources.add_postgres(
            "warehouse", connection_string=gx_connection_string(url), create_temp_table=True
        )
        self.startup_seconds = time.perf_counter() - started
        self._names: set[str] = set()

    @property
    def secret(self) -> str | None:
        return str(self._password) if self._password else None

    def __enter__(self) -> GxValidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.source.get_execution_engine().close()
        self.source.get_engine().dispose()

    def _drop_temporary_tables(self) -> None:
        """Best effort: they go with the connection anyway."""
        import sqlalchemy as sa

        try:
            self.source.get_execution_engine().execute_query_in_transaction(sa.text("discard temp"))
        except Exception:  # noqa: BLE001
            pass

    def validate(self, plan: EntityPlan) -> EntityVerdict:
        """Run the plan's expectations, one suite per query asset; the verdict names every failure.

        Two passes per asset: first every expectation with `CHECK_FORMAT` (counts only, no examples:
        about one scan of the materialized batch per expectation, and GX bundles the counts), then,
        only if some failed, those again with `RESULT_FORMAT` and the index columns, for the values and
        record numbers a failure message quotes. A passing batch pays for the first pass alone.
        """
        started = time.perf_counter()
        results: dict[str, tuple[bool, dict[str, Any]]] = {}
        for asset_name, query in plan.queries.items():
            planned = [p for p in plan.expectations if p.asset == asset_name]
            first = self._run(plan, asset_name, query, planned, CHECK_FORMAT)
            results.update(first)
            failed = [p for p in planned if not first[p.key][0]
                      and p.expectation_type not in _COUNT_ONLY_EXPECTATIONS]  # nothing more to learn about those
            if failed:
                detail = {**RESULT_FORMAT, "unexpected_index_column_names": plan.index_columns[asset_name]}
                results.update(self._run(plan, asset_name, query, failed, detail))
        return verdict(plan, results, seconds=time.perf_counter() - started)

    def _run(self, plan: EntityPlan, asset_name: str, query: str, planned: list[PlannedExpectation],
             result_format: dict[str, Any]) -> dict[str, tuple[bool, dict[str, Any]]]:
        """One GX validation of `planned` on the query asset: expectation key -> (success, result dict)."""
        import great_expectations.expectations as gxe

        name = f"{plan.entity}_{asset_name}_batch_{plan.batch_id}"
        while name in self._names:  # the same batch twice in one execution, or a second pass: keep names unique
            name += "_"
        self._names.add(name)
        suite = self.context.suites.add(self._gx.ExpectationSuite(name=name, expectations=[
            getattr(gxe, p.expectation_type)(**p.kwargs, meta={"key": p.key}) for p in planned
        ]))
        batch_definition = self.source.add_query_asset(name, query=query).add_batch_definition_whole_table("batch")
        validation = self.context.validation_definitions.add(
            self._gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
        )
        try:
            outcome = validation.run(result_format=result_format)
        finally:
            self._drop_temporary_tables()
        results: dict[str, tuple[bool, dict[str, Any]]] = {}
        for r in outcome.results:
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(f"{r.expectation_config.type} failed to run: "
                                   f"{r.exception_info.get('exception_message')}")
            results[r.expectation_config.meta["key"]] = (bool(r.success), dict(r.result or {}))
        return results


# ------------------------------------------------------------------------------------------- the gate


def previous_batch(conn: psycopg.Connection, run: audit.SystemRun, entity: str) -> PreviousBatch | None:
    """The entity's latest batch before this one (by batch timestamp) whose latest quality row succeeded."""
    row = conn.execute(
        """
        select batch_id, records_in from (
            select distinct on (batch_id) batch_id, batch_timestamp, status, records_in
            from audit.entity_layer_run
            where system_id = %(system)s and entity = %(entity)s and layer = 'quality' and batch_id <> %(batch)s
            order by batch_id, entity_layer_run_id desc
        ) latest
        where status = 'succeeded' and batch_timestamp < %(ts)s
        order by batch_timestamp desc, batch_id desc limit 1
        """,
        {"system": run.system_id, "entity": entity, "batch": run.batch_id, "ts": run.batch_timestamp},
    ).fetchone()
    return PreviousBatch(int(row[0]), int(row[1])) if row else None


def has_pg_input_is_valid(conn: psycopg.Connection) -> bool:
    return conn.info.server_version >= 160000


def check_batch(conn: psycopg.Connection, catalog: Catalog, run: audit.SystemRun, entities: list[Entity],
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
            verdicts.append(error_verdict(entity, run.batch_id, err, secret=validator.secret))
    return verdicts


def gate_batch(conn: psycopg.Connection, catalog: Catalog, run: audit.SystemRun, entities: list[Entity],
               validator: GxValidator, *, dagster_run_id: str) -> list[EntityVerdict]:
    """Check one batch and record the gate's word in the audit tables: the quality layer run of the
    batch, and one `quality` row per entity (`succeeded`, or `failed` with every failed expectation).

    Those rows are the contract: bronze and silver follow the latest quality row per (batch, system,
    entity). The system run is left open for the steps after the gate to close.
    """
    layer = audit.start_layer(conn, run, LAYER)
    verdicts = []
    try:
        for v in check_batch(conn, catalog, run, entities, validator):
            audit.record_entity(
                conn, layer_run_id=layer, run=run, entity=v.entity, layer=LAYER,
                status="succeeded" if v.passed else "failed", dagster_run_id=dagster_run_id,
                records_in=v.rows, message=v.message[:4000] if v.message else None,
            )
            verdicts.append(v)
    except BaseException as err:
        audit.finish_layer(conn, layer, "failed", message=f"the quality gate stopped: {type(err).__name__}")
        raise
    failed = [v.entity for v in verdicts if not v.passed]
    audit.finish_layer(conn, layer, "failed" if failed else "succeeded",
                       message=f"failed for: {', '.join(failed)}" if failed else None)
    return verdicts
