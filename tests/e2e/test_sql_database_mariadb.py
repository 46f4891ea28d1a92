"""The sql_database connector against a real MariaDB/MySQL server (127.0.0.1:3306, root without password, database
`test`; DATAPLATFORM_TEST_MYSQL_URL names another): a uniquely named table per test, dropped after. Values by value
(DECIMAL 1.50 with its scale, TIMESTAMP as UTC, DATETIME without offset, binary as base64, MariaDB's JSON as JSON,
BOOLEAN as a boolean), full, delta by timestamp and by id from the stored cursor (the boundary row read again), a
query endpoint, a query that writes refused by the read-only transaction, `check`, and terminal errors that name
the endpoint and table without the password. Skipped where no server answers, except under CI=true.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ingestion.connectors import CursorReached, PendingLoad, connector_for
from ingestion.connectors.sql_database import SqlSourceError
from metadata.models import parse_connection

pytestmark = pytest.mark.e2e

URL = os.environ.get("DATAPLATFORM_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


@pytest.fixture
def table() -> Iterator[str]:
    """A uniquely named table of vehicles in the server's `test` database; dropped afterwards."""
    engine = sa.create_engine(sa.engine.make_url(URL).set(drivername="mysql+pymysql"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as err:
        reason = f"no MySQL/MariaDB server answers at {URL} ({err.orig}); start one or set DATAPLATFORM_TEST_MYSQL_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    name = f"dp_vehicles_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"create table {name} (id bigint primary key, plate varchar(20) not null, price decimal(10, 2) not null,"
            " photo varbinary(16), specs json, active boolean not null, registered date not null,"
            " changed_at timestamp(6) not null default current_timestamp(6), seen datetime)")
        conn.exec_driver_sql("set time_zone = '+00:00'")
        conn.exec_driver_sql(
            f"insert into {name} values"
            " (1, 'AB-01', 1.50, x'00ff10', '{\"seats\": 5, \"weight\": 1.250}', true, '2026-01-01',"
            "  '2026-01-01 00:00:01.250000', '2026-01-01 10:00:00'),"
            " (2, 'AB-02', 20000.00, null, null, false, '2026-01-02', '2026-01-01 00:00:02', null),"
            " (3, 'AB-03', 3, null, '[]', true, '2026-01-03', '2026-01-01 00:00:03', null)")
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"drop table if exists {name}")
        engine.dispose()


def _connection(table: str, url: str = URL) -> Any:
    return parse_connection("sql_database", {
        "url": url, "retry": {"max_attempts": 2, "backoff_factor": 0, "jitter": 0},
        "endpoints": {
            "full": {"table": f"test.{table}"},
            "by_time": {"table": table, "load": "delta", "cursor_column": "changed_at", "chunk_size": 2},
            "by_id": {"query": f"select id, plate, 'a:b' as colon from {table} where id > 1", "load": "delta",
                      "cursor_column": "id"},
            "writes": {"query": f"select * from {table} for update"},
            "gone": {"table": "test.dp_no_such_table"},
        }}, resolved=True)


def _read(connection: Any, endpoint: str, cursors: dict[str, str] | None = None) -> tuple[list[Any], dict[str, str]]:
    reached = CursorReached()
    records = connector_for("sql_database").raw_records(
        connection, endpoint, PendingLoad("t", dt.datetime.now(dt.UTC), cursors or {}), base_dir=Path("."),
        reached=reached)
    return [json.loads(r, parse_float=Decimal) for r in records], reached.values


def test_mariadb_values_full_delta_and_query(table: str) -> None:
    connection = _connection(table)
    records, reached = _read(connection, "full")
    assert sorted(records, key=lambda r: r["id"]) == [
        {"id": 1, "plate": "AB-01", "price": Decimal("1.50"), "photo": "AP8Q",
         "specs": {"seats": 5, "weight": Decimal("1.250")}, "active": True, "registered": "2026-01-01",
         "changed_at": "2026-01-01T00:00:01.250000+00:00", "seen": "2026-01-01T10:00:00"},
        {"id": 2, "plate": "AB-02", "price": Decimal("20000.00"), "photo": None, "specs": None, "active": False,
         "registered": "2026-01-02", "changed_at": "2026-01-01T00:00:02+00:00", "seen": None},
        {"id": 3, "plate": "AB-03", "price": Decimal("3.00"), "photo": None, "specs": [], "active": True,
         "registered": "2026-01-03", "changed_at": "2026-01-01T00:00:03+00:00", "seen": None},
    ]
    assert reached == {}
    # The exact text: 1.50 keeps its scale (no float round trip).
    raw = next(connector_for("sql_database").raw_records(
        connection, "full", PendingLoad("t", dt.datetime.now(dt.UTC)), base_dir=Path("."), reached=CursorReached()))
    assert '"price":1.50,' in raw and '"weight":1.250' in raw

    # Delta by timestamp: in cursor order, in chunks of two; from the stored cursor the boundary row is read again.
    records, reached = _read(connection, "by_time")
    assert [r["id"] for r in records] == [1, 2, 3]
    assert reached == {"by_time": "2026-01-01T00:00:03+00:00"}
    records, reached = _read(connection, "by_time", {"by_time": "2026-01-01T00:00:02+00:00"})
    assert ([r["id"] for r in records], reached) == ([2, 3], {"by_time": "2026-01-01T00:00:03+00:00"})
    # Delta by id over a query (a colon in it is the query's own).
    records, reached = _read(connection, "by_id")
    assert (records, reached) == ([{"id": 2, "plate": "AB-02", "colon": "a:b"},
                                   {"id": 3, "plate": "AB-03", "colon": "a:b"}], {"by_id": "3"})
    records, reached = _read(connection, "by_id", {"by_id": "3"})
    assert (records, reached) == ([{"id": 3, "plate": "AB-03", "colon": "a:b"}], {"by_id": "3"})


def test_mariadb_writes_refused_check_and_terminal_errors(table: str) -> None:
    connection = _connection(table)
    with pytest.raises(SqlSourceError, match="endpoint writes, its query on mysql://.*: Cannot execute statement in "
                                             "a READ ONLY transaction"):
        _read(connection, "writes")
    with pytest.raises(SqlSourceError, match="endpoint gone, table test.dp_no_such_table on mysql://.*the table is "
                                             "not there"):
        _read(connection, "gone")
    checks = connector_for("sql_database").check(connection, base_dir=Path("."))  # type: ignore[attr-defined]
    assert [(c.endpoint, c.ok) for c in checks] == [("full", True), ("by_time", True), ("by_id", True),
                                                    ("writes", False), ("gone", False)]
    assert checks[0].message.startswith(f"table test.{table} readable on mysql://") and \
        checks[0].message.endswith("9 column(s)")
    wrong = sa.engine.make_url(URL).set(password="not-the-password-0815").render_as_string(hide_password=False)
    [refused, *_] = connector_for("sql_database").check(_connection(table, wrong),  # type: ignore[attr-defined]
                                                        base_dir=Path("."))
    assert not refused.ok
    assert "the credentials were refused" in refused.message
    assert "not-the-password-0815" not in refused.message
