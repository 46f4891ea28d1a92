"""When a JSON value fits a declared type, and how bronze turns it into that type: the one definition,
used by the quality gate (`quality.plan`, which classifies each value into a JSON *kind*) and by bronze
(`dbt_project/macros/bronze.sql`, which gets each column's cast from `cast_sql` through
`metadata.columns.Column.macro_args`), so that whatever passes the gate builds.

JSON kinds: `missing` (no such key), `null`, `string`, `integer` (a number without fraction that fits a
bigint), `number` (any other number), `out_of_range` (for an attribute declared as a float: a number
too big or too small for a double precision), `boolean`, `object`, `array`, and, for attributes declared as dates
or timestamps, `date` / `timestamp` (a string PostgreSQL reads as one; any other string stays `string`).

The int rule: a JSON number has no int/float distinction (JavaScript, pandas and many serializers write
`1.0` for 1), so `1.0`, `1.00` and `1e0` for an `int` are the integer 1: the gate calls them `integer`
and bronze reads them through numeric (`cast(cast(v as numeric) as bigint)`), which is exact for them.
`1.5` is a `number`, which an `int` does not accept: the gate fails the entity, naming the attribute,
the landing record and (in the check's observed values) the value; it never reaches bronze, where the
numeric cast would round it.

MongoDB Extended JSON (relaxed), as `mongodb` systems land documents: a value JSON has no type for is an object
with one tag. For such a system, a column declared as a scalar type reads the tagged value (`untagged_sql`):
`{"$date": "2026-01-02T00:00:00Z"}` is that timestamp (or date), `{"$numberDecimal": "1.50"}` the number 1.50
(every digit), `{"$numberLong": "7"}` the number 7, `{"$oid": "65a1..."}` that string. Any other tagged value
(NaN, binary, a date outside 1970-9999 written as milliseconds) stays an object, which the gate names. A column
declared as a dict (jsonb) keeps the tagged object as it is.

Every SQL text here reads the same under any session setting (TimeZone, DateStyle, extra_float_digits),
except what PostgreSQL itself reads by them: a date or timestamp string (DateStyle's field order, and
the zone of a timestamp without offset). The platform pins those settings for every connection it
opens (`warehouse.session`), so the gate and bronze read such a string the same way.
"""

from __future__ import annotations

JSON_VALUE = "{value}"  # placeholder in `cast_sql`'s template: the value's text (`#>>`), as bronze reads it

# The JSON kinds a declared PostgreSQL type accepts.
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
ANY_KIND = ("string", "integer", "number", "boolean", "object", "array")  # a type without an entry above
STRING_KIND = {"date": "date", "timestamptz": "timestamp"}  # strings PostgreSQL must be able to read as these
# Used where pg_input_is_valid (PostgreSQL 16+) is missing: ISO dates and timestamps, as sources send them.
ISO_PATTERNS = {
    "date": r"^\d{4}-\d{2}-\d{2}$",
    "timestamptz": r"^\d{4}-\d{2}-\d{2}([ T]\d{2}[:]\d{2}([:]\d{2}([.]\d+)?)?)?\s*(Z|[+-]\d{2}([:]?\d{2})?)?$",
}
BIGINT_MAX = 9223372036854775807
# The JSON numbers a double precision holds: up to its largest finite value; and a non-zero number must
# not round to zero (PostgreSQL's float8 input refuses both). Used where pg_input_is_valid is missing.
FLOAT8_MAX = "1.7976931348623157e308"
FLOAT8_MIN_SUBNORMAL = "4.9406564584124654e-324"


# The tags `untagged_sql` reads: a string (date, ObjectId) or a number written as a string (decimal, long).
EXTENDED_JSON_STRING_TAGS = ("$date", "$oid")
EXTENDED_JSON_NUMBER_TAGS = ("$numberDecimal", "$numberLong")
JSON_NUMBER = r"^-?(0|[1-9][0-9]*)([.][0-9]+)?([eE][-+]?[0-9]+)?$"


def untagged_sql(json_sql: str) -> str:
    """SQL giving the jsonb `json_sql` with its Extended JSON tag taken off (module docstring): the tagged string,
    or the tagged number as a JSON number; any other value as it is."""
    v = f"({json_sql})"
    numbers = [f"case when ({v} ->> '{tag}') ~ {_sql_string(JSON_NUMBER)} then cast({v} ->> '{tag}' as jsonb) end"
               for tag in EXTENDED_JSON_NUMBER_TAGS]
    strings = [f"({v} -> '{tag}')" for tag in EXTENDED_JSON_STRING_TAGS]
    # `->` of a key gives NULL on a string, number or array: only a tagged object is changed.
    return f"coalesce({', '.join([*strings, *numbers])}, {v})"


def _sql_string(text: str) -> str:
    """An SQL string literal that reads the same whatever `standard_conforming_strings` says."""
    quoted = text.replace("'", "''")
    return "E'" + quoted.replace("\\", "\\\\") + "'" if "\\" in quoted else f"'{quoted}'"


def kind_sql(pg_type: str, json_sql: str, *, pg_input_is_valid: bool) -> str:
    """SQL giving the JSON kind (module docstring) of the jsonb value `json_sql` (SQL NULL: missing),
    judged for an attribute declared as `pg_type`."""
    v = json_sql
    n = f"({v})::numeric"
    out_of_range = ""
    if pg_type == "double precision":  # numeric holds any JSON number; a double precision does not
        fits = (f"pg_input_is_valid(({v} #>> '{{}}'), 'double precision')" if pg_input_is_valid
                else f"(abs({n}) <= {FLOAT8_MAX} and ({n} = 0 or abs({n}) >= {FLOAT8_MIN_SUBNORMAL}))")
        out_of_range = f" when not {fits} then 'out_of_range'"
    # `integer` comes first: a whole number that fits a bigint is an integer, whatever else it fits.
    number = f"case when {n} = trunc({n}) and abs({n}) <= {BIGINT_MAX} then 'integer'{out_of_range} else 'number' end"
    string = "'string'"
    if pg_type in STRING_KIND:
        text = f"({v} #>> '{{}}')"
        valid = (f"pg_input_is_valid({text}, {_sql_string(pg_type)})" if pg_input_is_valid
                 else f"{text} ~ {_sql_string(ISO_PATTERNS[pg_type])}")
        string = f"case when {valid} then {_sql_string(STRING_KIND[pg_type])} else 'string' end"
    return (f"coalesce(case jsonb_typeof({v}) when 'number' then {number} when 'string' then {string}"
            f" else jsonb_typeof({v}) end, 'missing')")


def cast_sql(pg_type: str) -> str:
    """Bronze's cast of a value's text to `pg_type`, as a template around `JSON_VALUE`; for every value
    whose kind `pg_type` accepts, it gives that value (jsonb columns are read as jsonb, not through this)."""
    if pg_type in ("bigint", "integer"):
        # Through numeric: `1.0` (kind integer) is 1; a bigint cast of the text "1.0" would fail.
        return f"cast(cast({JSON_VALUE} as numeric) as {pg_type})"
    return f"cast({JSON_VALUE} as {pg_type})"
