"""Deletes in the records: when a landed record says its key was deleted (an entity's `deleted_when`).

The one definition of "this record is a delete", as SQL over the record's JSON: bronze computes its
`_deleted` column with it (through the generated model) and the quality gate exempts those records from
the required-attribute rule with it, so the two cannot disagree on which records are deletes.

Values compare as JSON values (jsonb equality): a string matches the same string, a number the same
number whatever its written form (`1` = `1.0`), a boolean the boolean. A string is not a boolean:
`"true"` (as a CSV file delivers every field) does not match `true`; declare the marker as the source
writes it. A record whose field is absent or null is not a delete.
"""

from __future__ import annotations

import json

from metadata.columns import Column, SystemColumn, json_path_literal
from metadata.models import DeleteMarker
from metadata.value_types import KINDS_BY_PG_TYPE

DELETED_COLUMN = "_deleted"  # bronze's (and silver's stage's) flag: the record is a delete
DELETED_BRONZE_COLUMN = SystemColumn(
    DELETED_COLUMN, "boolean", "The record is a delete (the entity's `deleted_when`): silver closes its key's current "
    "version at the batch's timestamp and takes none of its other values.")
RECORD = "{record}"  # placeholder in `marker_sql`'s template: the record's jsonb (e.g. landing.payload)


def _sql_string(text: str) -> str:
    """An SQL string literal that reads the same whatever `standard_conforming_strings` says."""
    quoted = text.replace("'", "''")
    return "E'" + quoted.replace("\\", "\\\\") + "'" if "\\" in quoted else f"'{quoted}'"


def marker_sql(marker: DeleteMarker, record: str = RECORD) -> str:
    """SQL that is true when the jsonb record `record` is a delete, false otherwise (never null)."""
    path = json_path_literal(marker.field.split("."))
    values = ", ".join(f"cast({_sql_string(json.dumps(v))} as jsonb)" for v in marker.values())
    return f"coalesce(({record} #> {path}) in ({values}), false)"


def _kind(value: str | bool | int | float) -> str:
    """The JSON kind of a marker value, as the quality gate names kinds (metadata.value_types)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


_COMPARABLE = ("text", "bigint", "integer", "double precision", "numeric", "boolean")


def marker_problem(marker: DeleteMarker, columns: list[Column]) -> tuple[str, str] | None:
    """Why `marker` cannot match a record of an entity with these columns, as (its field, the problem), or None.

    Only a field the entity models is checked: its declared type must be one whose JSON value is compared
    as it is (a date or timestamp string would compare as text, not as a date), and each marker value must be
    of a kind that type accepts (a `bool` field is never "yes")."""
    path = tuple(marker.field.split("."))
    column = next((c for c in columns if c.source == "record" and c.path == path), None)
    if column is None:
        return None
    if column.pg_type not in _COMPARABLE:
        return "field", (f"field {marker.field!r} is declared {column.pg_type} in the entity model; a delete marker "
                         "compares JSON values, so mark deletes with a str, int, float, Decimal or bool field")
    allowed = KINDS_BY_PG_TYPE[column.pg_type]
    for value in marker.values():
        if _kind(value) not in allowed:
            where = "equals" if marker.equals is not None else "one_of"
            return where, (f"{json.dumps(value)} can never match field {marker.field!r}, declared {column.pg_type} in "
                           f"the entity model (accepts {' or '.join(allowed)}); write the value as the source sends it")
    return None

