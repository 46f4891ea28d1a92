"""The one definition of "this value fits the declared type" (metadata.value_types), on a real PostgreSQL:
every JSON value the gate's kind lets through for a declared type casts in bronze's way without error and
gives the value itself; the ones it refuses are named by kind. And the platform's psycopg connections get
the pinned session settings whatever PGTZ / PGOPTIONS say."""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal

import psycopg
import pytest

from metadata.value_types import JSON_VALUE, KINDS_BY_PG_TYPE, cast_sql, kind_sql, untagged_sql
from warehouse import session

pytestmark = pytest.mark.e2e

VALUES = ["1", "1.0", "1.00", "1e0", "1.5", "-0", "0.1", "1e400", "1e-400", "9223372036854775807",
          "9223372036854775808", '"1"', '"2026-01-31"', '"2026-01-31T10:00:00+01:00"', '"2026-01-31 10:00"',
          '"01/02/2026"', '"2026-02-30"', "true", "null", '{"a": 1}', "[1]"]
EXPECTED_KINDS = {  # declared type -> value -> kind, for the values whose kind depends on the type
    "bigint": {"1": "integer", "1.0": "integer", "1.00": "integer", "1e0": "integer", "1.5": "number",
               "1e400": "number", "9223372036854775808": "number"},
    "double precision": {"1.5": "number", "1e400": "out_of_range", "1e-400": "out_of_range", "-0": "integer"},
    "numeric": {"1e400": "number", "1e-400": "number"},
    "date": {'"2026-01-31"': "date", '"01/02/2026"': "string", '"2026-02-30"': "string"},
    "timestamptz": {'"2026-01-31T10:00:00+01:00"': "timestamp", '"2026-01-31 10:00"': "timestamp",
                    '"2026-01-31"': "timestamp"},
}


@pytest.mark.parametrize("pg_type", [t for t in KINDS_BY_PG_TYPE if t not in ("jsonb", "integer")])
def test_whatever_passes_the_gate_casts_in_bronze(warehouse: str, pg_type: str) -> None:
    with session.connect(warehouse, autocommit=True) as conn:
        modern = conn.info.server_version >= 160000
        for value in VALUES:
            literal = f"cast({psycopg.sql.Literal(value).as_string(conn)} as jsonb)"
            kind = conn.execute(f"select {kind_sql(pg_type, literal, pg_input_is_valid=modern)}").fetchone()[0]
            if value in EXPECTED_KINDS.get(pg_type, {}):
                assert kind == EXPECTED_KINDS[pg_type][value], (pg_type, value)
            if kind not in KINDS_BY_PG_TYPE[pg_type]:
                continue
            text = f"({literal} #>> '{{}}')"
            cast = conn.execute(f"select {cast_sql(pg_type).replace(JSON_VALUE, text)}").fetchone()[0]
            if kind in ("integer", "number"):
                assert float(cast) == float(json.loads(value)), (pg_type, value)


# MongoDB Extended JSON (relaxed) values as a `mongodb` system lands them: declared type -> value -> the kind the
# gate sees once the tag is taken off, and bronze's value (None: the gate refuses it, bronze never reads it).
TAGGED = {
    "timestamptz": {'{"$date": "2026-01-02T01:30:00.250Z"}': ("timestamp", dt.datetime(2026, 1, 2, 1, 30, 0, 250000,
                                                                                         tzinfo=dt.UTC)),
                    '{"$date": {"$numberLong": "-62135596800000"}}': ("object", None)},
    "numeric": {'{"$numberDecimal": "1.50"}': ("number", Decimal("1.50")),
                '{"$numberDecimal": "-1E+3"}': ("integer", Decimal("-1E+3")),
                '{"$numberDecimal": "NaN"}': ("object", None), "2.5": ("number", Decimal("2.5"))},
    "bigint": {'{"$numberLong": "9007199254740993"}': ("integer", 9007199254740993), "7": ("integer", 7)},
    "text": {'{"$oid": "65a1b2c3d4e5f60718293a4b"}': ("string", "65a1b2c3d4e5f60718293a4b"),
             '"{\\"$oid\\": 1}"': ("string", '{"$oid": 1}'), '["$oid"]': ("array", None)},
    "double precision": {'{"$numberDouble": "Infinity"}': ("object", None), "0.5": ("number", 0.5)},
    "boolean": {'{"$binary": {"base64": "AA==", "subType": "00"}}': ("object", None), "true": ("boolean", True)},
}


@pytest.mark.parametrize("pg_type", list(TAGGED))
def test_a_tagged_mongodb_value_is_its_declared_type_in_gate_and_bronze(warehouse: str, pg_type: str) -> None:
    with session.connect(warehouse, autocommit=True) as conn:
        modern = conn.info.server_version >= 160000
        for value, (expected_kind, expected) in TAGGED[pg_type].items():
            literal = untagged_sql(f"cast({psycopg.sql.Literal(value).as_string(conn)} as jsonb)")
            kind = conn.execute(f"select {kind_sql(pg_type, literal, pg_input_is_valid=modern)}").fetchone()[0]
            assert kind == expected_kind, (pg_type, value)
            if expected is not None:
                cast = cast_sql(pg_type).replace(JSON_VALUE, f"({literal} #>> '{{}}')")
                assert conn.execute(f"select {cast}").fetchone()[0] == expected, (pg_type, value)
                assert kind in KINDS_BY_PG_TYPE[pg_type]


def test_platform_connections_ignore_the_environment(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGTZ", "America/New_York")
    monkeypatch.setenv("PGDATESTYLE", "SQL, DMY")
    monkeypatch.setenv("PGOPTIONS", "-c extra_float_digits=-5 -c TimeZone=Asia/Tokyo")
    with psycopg.connect(warehouse) as conn:  # a plain libpq client under that environment
        assert conn.execute("show TimeZone").fetchone()[0] == "America/New_York"
    with session.connect(warehouse) as conn:
        shown = {name: conn.execute(f"show {name}").fetchone()[0] for name in session.SESSION_SETTINGS}
        conn.rollback()  # the settings are the session's, not the first transaction's
        assert conn.execute("show TimeZone").fetchone()[0] == "UTC"
    assert shown == session.SESSION_SETTINGS
    session.pin_environment()  # what every `dataplatform` process does for dlt, dbt and GX
    assert "PGTZ" not in os.environ and "PGDATESTYLE" not in os.environ
    with psycopg.connect(warehouse) as conn:
        assert conn.execute("show TimeZone").fetchone()[0] == "UTC"
        assert conn.execute("show extra_float_digits").fetchone()[0] == "1"
        assert conn.execute("show DateStyle").fetchone()[0] == "ISO, YMD"
