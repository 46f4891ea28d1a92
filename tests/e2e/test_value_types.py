"""The one definition of "this value fits the declared type" (metadata.value_types), on a real PostgreSQL:
every JSON value the gate's kind lets through for a declared type casts in bronze's way without error and
gives the value itself; the ones it refuses are named by kind. And the platform's psycopg connections get
the pinned session settings whatever PGTZ / PGOPTIONS say."""

from __future__ import annotations

import json
import os

import psycopg
import pytest

from metadata.value_types import JSON_VALUE, KINDS_BY_PG_TYPE, cast_sql, kind_sql
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
