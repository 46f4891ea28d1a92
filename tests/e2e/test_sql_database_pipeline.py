"""A sql_database system end to end (`dataplatform run` in subprocesses, real PostgreSQL, dbt and Dagster): the
source is a database of its own on the session's embedded server (created per test, dropped after). Landed
payloads by value (numeric 1.50 with its scale, timestamptz as UTC ISO 8601, bytea as base64, jsonb as JSON, a
boolean, a date, a timestamp without zone), the cursor after each batch (audit.cursor, audit.batch_cursor) by
timestamp and by id, a query endpoint read whole, a row changed on day 2 making exactly one new silver version
(the boundary row read again makes none), a missing table failing the batch at once with nothing kept and the
cursor left, `dataplatform check`, and no secret in the output or the audit tables. Then the connector on its
own: retries and terminal errors against the real server (wrong password, missing table, a query that writes).

The test system SQT01 (tests/e2e/sql_metadata, models in sql_models.py) runs in a warehouse database of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url
from warehouse_db import OneSecret, database_url, declarations_with, fresh_database, rows

from ingestion.connectors import CursorReached, PendingLoad, connector_for
from ingestion.connectors.sql_database import SqlSourceError
from metadata.catalog import load_catalog
from metadata.models import parse_connection

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
UTC = dt.UTC

SOURCE_DDL = """
create table vehicles (id bigint primary key, plate text not null, price numeric(10, 2) not null, photo bytea,
                       specs jsonb not null, active boolean not null, registered date not null,
                       updated_at timestamptz not null);
create schema fleet;
create table fleet.events (id bigint generated always as identity primary key, vehicle_id bigint not null,
                           kind text not null);
create table owners (id bigint primary key, name text not null, since timestamp not null, active boolean not null);
insert into vehicles values
  (1, 'AB-01', 1.50, '\\x00ff10', '{"seats": 5, "weight": 1.250}', true, '2026-01-01', '2026-01-01T01:00:01+01:00'),
  (2, 'AB-02', 20000.00, null, '{"seats": 2, "tags": ["ev"]}', false, '2026-01-02', '2026-01-01T00:00:02Z'),
  (3, 'AB-03', 3, null, '{}', true, '2026-01-03', '2026-01-01T00:00:03Z');
insert into fleet.events (vehicle_id, kind) values (1, 'service'), (2, 'sold'), (3, 'bought');
insert into owners values (1, 'Ada', '2025-12-31T23:00:00', true), (2, 'Bob', '2025-06-01T08:30:00.5', true),
                          (3, 'Cy', '2025-01-01T00:00:00', false);
"""


@pytest.fixture
def source(warehouse: str) -> Iterator[str]:
    """A uniquely named source database on the session's server, with the fleet tables; dropped afterwards."""
    name = f"sql_source_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = database_url(warehouse, name)
    try:
        with psycopg.connect(url) as conn:
            conn.execute(SOURCE_DDL)
        yield url
    finally:
        with psycopg.connect(warehouse, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


def cli(url: str, home: Path, metadata: Path, source_url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "PG"))}
    env.update(DATAPLATFORM_DATABASE_URL=url, DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               DATAPLATFORM_METADATA_DIR=str(metadata), DATAPLATFORM_ENV_FILE=str(home / "absent.env"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), str(HERE.parent)]),
               DATAPLATFORM_SECRET_SQT01_URL=source_url)
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def cursors(url: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in rows(url, "select endpoint, value, batch_id from audit.cursor"
                                                 " where system_id = 'SQT01' order by endpoint")]


def batches(url: str) -> list[int]:
    return [r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch where system_id = 'SQT01'"
                                             " order by batch_id")]


VEHICLE_FIELDS = ("select payload->>'id' as id, (payload->'price')::text as price, payload->>'photo' as photo,"
                  " (payload->'specs')::text as specs, jsonb_typeof(payload->'specs') as specs_type,"
                  " payload->'active' as active, payload->>'registered' as registered,"
                  " payload->>'updated_at' as updated_at from landing.sqt01_vehicles where _batch_id = %s"
                  " order by _record_no")


def test_a_sql_system_lands_by_cursor_and_keeps_history(warehouse: str, source: str, tmp_path: Path) -> None:
    password = make_url(source).password
    assert password
    outputs: list[str] = []
    url = fresh_database(warehouse, "sql_pipeline")
    home, metadata = tmp_path / "home", declarations_with(tmp_path, "sql_metadata")
    (home / "dagster").mkdir(parents=True)
    load_catalog(metadata, secrets=OneSecret("sqt01/url", source))  # the test's declarations are valid

    def run(*args: str) -> tuple[int, str]:
        code, output = cli(url, home, metadata, source, "run", "--system", "SQT01", *args)
        outputs.append(output)
        return code, output

    # Day 1: every row of each endpoint (no cursor yet).
    code, output = run()
    assert code == 0, output
    [day1] = batches(url)
    assert rows(url, VEHICLE_FIELDS, (day1,)) == [
        {"id": "1", "price": "1.50", "photo": "AP8Q", "specs": '{"seats": 5, "weight": 1.250}',
         "specs_type": "object", "active": True, "registered": "2026-01-01", "updated_at": "2026-01-01T00:00:01+00:00"},
        {"id": "2", "price": "20000.00", "photo": None, "specs": '{"tags": ["ev"], "seats": 2}', "specs_type": "object",
         "active": False, "registered": "2026-01-02", "updated_at": "2026-01-01T00:00:02+00:00"},
        {"id": "3", "price": "3.00", "photo": None, "specs": "{}", "specs_type": "object", "active": True,
         "registered": "2026-01-03", "updated_at": "2026-01-01T00:00:03+00:00"},
    ]
    assert [r["payload"] for r in rows(url, "select payload from landing.sqt01_events where _batch_id = %s"
                                            " order by _record_no", (day1,))] == [
        {"id": 1, "vehicle_id": 1, "kind": "service"}, {"id": 2, "vehicle_id": 2, "kind": "sold"},
        {"id": 3, "vehicle_id": 3, "kind": "bought"}]
    assert sorted((r["payload"]["id"], r["payload"]["since"]) for r in rows(
        url, "select payload from landing.sqt01_owners where _batch_id = %s", (day1,))) == [
        (1, "2025-12-31T23:00:00"), (2, "2025-06-01T08:30:00.500000")]
    assert cursors(url) == [("events", "3", day1), ("vehicles", "2026-01-01T00:00:03+00:00", day1)]
    silver = rows(url, "select id, price, updated_at from silver.sqt01_sql_vehicle order by id")
    assert [(r["id"], r["price"]) for r in silver] == [(1, Decimal("1.50")), (2, Decimal("20000.00")),
                                                        (3, Decimal("3.00"))]
    assert silver[0]["updated_at"] == dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)

    # Day 2: vehicle 2 changes, events 4 and 5 arrive, owner Bob leaves (inactive).
    with psycopg.connect(source) as conn:
        conn.execute("update vehicles set price = 19500.50, updated_at = '2026-01-02T00:00:00Z' where id = 2")
        conn.execute("insert into fleet.events (vehicle_id, kind) values (2, 'repaired'), (1, 'washed')")
        conn.execute("update owners set active = false where id = 2")
    code, output = run()
    assert code == 0, output
    day2 = batches(url)[-1]
    # The boundary rows (cursor equal to the stored one) are read again, then what is newer, in cursor order.
    assert [(r["id"], r["price"]) for r in rows(url, VEHICLE_FIELDS, (day2,))] == [("3", "3.00"),
                                                                                   ("2", "19500.50")]
    assert [r["id"] for r in rows(url, "select (payload->>'id')::int as id from landing.sqt01_events"
                                       " where _batch_id = %s order by _record_no", (day2,))] == [3, 4, 5]
    assert cursors(url) == [("events", "5", day2), ("vehicles", "2026-01-02T00:00:00+00:00", day2)]
    assert [tuple(r.values()) for r in rows(
        url, "select batch_id, endpoint, start_value, end_value from audit.batch_cursor where system_id = 'SQT01'"
             " order by batch_id, endpoint")] == [
        (day1, "events", None, "3"), (day1, "vehicles", None, "2026-01-01T00:00:03+00:00"),
        (day2, "events", "3", "5"), (day2, "vehicles", "2026-01-01T00:00:03+00:00", "2026-01-02T00:00:00+00:00")]
    # Silver: one new version for the changed vehicle, none for vehicle 3 read again; the full query closes Bob.
    silver = rows(url, "select id, price, _opened_by_batch_id, _closed_by_batch_id from silver.sqt01_sql_vehicle"
                       " order by id, valid_from")
    assert [tuple(r.values()) for r in silver] == [
        (1, Decimal("1.50"), day1, None),
        (2, Decimal("20000.00"), day1, day2),
        (2, Decimal("19500.50"), day2, None),
        (3, Decimal("3.00"), day1, None),
    ]
    assert [tuple(r.values()) for r in rows(url, "select id, _closed_by_batch_id from silver.sqt01_sql_owner"
                                                 " order by id")] == [(1, None), (2, day2)]

    # Day 3: the events table is gone: the batch fails at once naming the endpoint and table; nothing of it is
    # kept (vehicles neither) and the cursors stay.
    with psycopg.connect(source) as conn:
        conn.execute("update vehicles set plate = 'AB-01x', updated_at = '2026-01-03T00:00:00Z' where id = 1")
        conn.execute("alter table fleet.events rename to events_gone")
    code, output = run()
    assert code == 1, output
    assert "endpoint events, table fleet.events on postgresql://" in output
    assert "the table is not there" in output
    assert batches(url) == [day1, day2]
    assert rows(url, "select count(*) as n from landing.sqt01_vehicles") == [{"n": 5}]
    assert cursors(url) == [("events", "5", day2), ("vehicles", "2026-01-02T00:00:00+00:00", day2)]

    # `dataplatform check`: per endpoint; the missing table is named, the others are readable.
    code, output = cli(url, home, metadata, source, "check", "SQT01")
    outputs.append(output)
    assert code == 1, output
    lines = output.strip().splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [["SQT01.vehicles", "ok"], ["SQT01.events", "FAILED"],
                                                        ["SQT01.owners", "ok"]]
    assert "table public.vehicles readable on postgresql://" in lines[0] and lines[0].endswith("8 column(s)")

    # No secret anywhere: the CLI's output, the audit tables.
    assert not [o for o in outputs if password in o]
    for table in ("system_run", "system_layer_run", "entity_layer_run", "cursor", "batch_cursor"):
        assert password not in json.dumps(rows(url, f"select * from audit.{table}"), default=str), table


def _read(connection: Any, endpoint: str, cursors: dict[str, str] | None = None) -> tuple[list[Any], dict[str, str]]:
    reached = CursorReached()
    records = connector_for("sql_database").raw_records(
        connection, endpoint, PendingLoad("t", dt.datetime.now(UTC), cursors or {}), base_dir=Path("."),
        reached=reached)
    return [json.loads(r, parse_float=Decimal) for r in records], reached.values


def test_the_connector_reads_in_chunks_refuses_writes_and_names_terminal_errors(source: str) -> None:
    wrong = make_url(source).set(password="not-the-password-0815").render_as_string(hide_password=False)
    connection = parse_connection("sql_database", {
        "url": source, "retry": {"max_attempts": 2, "backoff_factor": 0, "jitter": 0},
        "endpoints": {
            "by_id": {"query": "select id, kind, '12:30'::time as at from fleet.events", "load": "delta",
                      "cursor_column": "id", "initial_cursor": "2", "chunk_size": 1},
            "writes": {"query": "select * from vehicles for update"},
            "gone": {"table": "public.nope"},
            "no_column": {"table": "vehicles", "load": "delta", "cursor_column": "changed_at"},
        }}, resolved=True)
    # A query endpoint by id from its initial cursor, a chunk of one row at a time; a colon in the query is kept.
    assert _read(connection, "by_id") == ([{"id": 2, "kind": "sold", "at": "12:30:00"},
                                           {"id": 3, "kind": "bought", "at": "12:30:00"}], {"by_id": "3"})
    assert _read(connection, "by_id", {"by_id": "3"}) == ([{"id": 3, "kind": "bought", "at": "12:30:00"}],
                                                          {"by_id": "3"})
    with pytest.raises(SqlSourceError, match="endpoint writes, its query on postgresql://.*: cannot execute SELECT "
                                             "FOR UPDATE in a read-only transaction"):
        _read(connection, "writes")
    with pytest.raises(SqlSourceError, match="endpoint gone, table public.nope on postgresql://.*the table is not "
                                             "there"):
        _read(connection, "gone")
    with pytest.raises(SqlSourceError, match="the cursor column 'changed_at' is not a column of the table"):
        _read(connection, "no_column")
    checks = connector_for("sql_database").check(connection, base_dir=Path("."))  # type: ignore[attr-defined]
    assert [(c.endpoint, c.ok) for c in checks] == [("by_id", True), ("writes", False), ("gone", False),
                                                    ("no_column", False)]
    refused = parse_connection("sql_database", {"url": wrong, "retry": {"max_attempts": 3, "backoff_factor": 0,
                                                                        "jitter": 0},
                                                "endpoints": {"v": {"table": "vehicles"}}}, resolved=True)
    [check] = connector_for("sql_database").check(refused, base_dir=Path("."))  # type: ignore[attr-defined]
    assert not check.ok
    assert "the credentials were refused" in check.message and "still failing" not in check.message
    assert "not-the-password-0815" not in check.message
    with pytest.raises(SqlSourceError) as err:
        _read(refused, "v")
    assert "endpoint v, table vehicles on postgresql://" in str(err.value)
    assert "not-the-password-0815" not in str(err.value)
    closed = parse_connection("sql_database", {
        "url": make_url(source).set(port=1).render_as_string(hide_password=False),
        "retry": {"max_attempts": 2, "backoff_factor": 0, "jitter": 0}, "endpoints": {"v": {"table": "vehicles"}}},
        resolved=True)
    with pytest.raises(SqlSourceError, match="still failing after 2 attempt"):
        _read(closed, "v")
