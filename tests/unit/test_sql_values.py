"""How a SQL row becomes its landed JSON text (no database): numerics by their exact digits, timestamps with their
zone, binary as base64, JSON as JSON, booleans as booleans; the cursor's text and how it is read back by column
type; which driver errors are retried; the server named without its password."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from ingestion.connectors.sql_database import SqlSourceError, _typed, database_url, is_transient, shown
from ingestion.connectors.sql_values import cursor_text, encode_row, iso_duration
from metadata.models import SqlDatabaseConnection, parse_connection
from secret_store.redact import redact

UTC = dt.UTC


def test_values_keep_their_meaning() -> None:
    row = {
        "amount": Decimal("1.50"), "big": Decimal("12345678901234567890.000000001"), "whole": Decimal("3.00"),
        "at": dt.datetime(2026, 1, 1, 0, 0, 5, 123456, tzinfo=UTC),
        "naive": dt.datetime(2026, 1, 1, 10, 0), "day": dt.date(2026, 1, 2), "clock": dt.time(12, 30),
        "bin": b"\x00\xff\x10", "view": memoryview(b"ab"), "doc": {"a": [1, Decimal("2.50")], "b": None},
        "ok": True, "no": False, "n": 42, "huge": 2**70, "id": uuid.UUID(int=5), "text": "ä \"q\"",
        "nothing": None, "ratio": 0.1, "span": dt.timedelta(days=1, seconds=3600, microseconds=500),
        "tags": ["a", "b"],
    }
    text = encode_row(row)
    assert text == (
        '{"amount":1.50,"big":12345678901234567890.000000001,"whole":3.00,"at":"2026-01-01T00:00:05.123456+00:00",'
        '"naive":"2026-01-01T10:00:00","day":"2026-01-02","clock":"12:30:00","bin":"AP8Q","view":"YWI=",'
        '"doc":{"a":[1,2.50],"b":null},"ok":true,"no":false,"n":42,"huge":1180591620717411303424,'
        '"id":"00000000-0000-0000-0000-000000000005","text":"ä \\"q\\"","nothing":null,"ratio":0.1,'
        '"span":"P1DT3600.0005S","tags":["a","b"]}')
    # Read back without a float round trip: every digit is there.
    parsed = json.loads(text, parse_float=Decimal)
    assert (parsed["amount"], parsed["big"], parsed["huge"]) == (
        Decimal("1.50"), Decimal("12345678901234567890.000000001"), 2**70)


def test_numbers_json_has_no_number_for_become_strings() -> None:
    row = {"f": float("nan"), "g": float("inf"), "d": Decimal("NaN"), "e": Decimal("-Infinity"),
           "arr": [1.5, float("-inf")], "t": dt.time(1, 2, tzinfo=UTC)}
    assert encode_row(row) == ('{"f":"NaN","g":"Infinity","d":"NaN","e":"-Infinity","arr":[1.5,"-Infinity"],'
                               '"t":"01:02:00+00:00"}')


def test_durations() -> None:
    assert iso_duration(dt.timedelta(seconds=90)) == "P0DT90S"
    assert iso_duration(dt.timedelta(days=-1, seconds=86399, microseconds=250000)) == "P-1DT86399.25S"


def test_cursor_text_and_back_by_column_type() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)
    assert cursor_text(at) == "2026-01-02T03:04:05.000600+00:00"
    assert _typed(cursor_text(at), sa.DateTime(timezone=True)) == at
    assert _typed("2026-01-02", sa.DateTime()) == dt.datetime(2026, 1, 2)
    assert _typed("2026-01-02T00:00:00Z", sa.DateTime(timezone=True)) == dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert _typed(cursor_text(10**12), sa.BigInteger()) == 10**12
    assert _typed(cursor_text(Decimal("1.50")), sa.Numeric()) == Decimal("1.50")
    assert _typed("2026-01-02", sa.Date()) == dt.date(2026, 1, 2)
    assert _typed("B-17", sa.String()) == "B-17"
    # A query's column has no declared type: the text says what it is.
    assert _typed("42", None) == 42
    assert _typed("2026-01-02T03:04:05+00:00", None) == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert _typed("2026-01-02", None) == dt.date(2026, 1, 2)
    assert _typed("B-17", None) == "B-17"
    with pytest.raises(ValueError):
        _typed("yesterday", sa.DateTime())


class _PgError(Exception):
    def __init__(self, sqlstate: str | None, text: str) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("orig", "transient"), [
    (_PgError("40001", "could not serialize access"), True),
    (_PgError("40P01", "deadlock detected"), True),
    (_PgError("08006", "connection failure"), True),
    (_PgError("57P01", "terminating connection due to administrator command"), True),
    (_PgError(None, 'connection to server at "127.0.0.1", port 1 failed: Connection refused'), True),
    (_PgError(None, 'FATAL:  password authentication failed for user "x"'), False),
    (_PgError(None, 'FATAL:  database "nope" does not exist'), False),
    (_PgError("42P01", 'relation "nope" does not exist'), False),
    (_PgError("42501", "permission denied for table t"), False),
    (Exception(2013, "Lost connection to MySQL server during query"), True),
    (Exception(1213, "Deadlock found when trying to get lock"), True),
    (Exception(2003, "Can't connect to MySQL server"), True),
    (Exception(1045, "Access denied for user 'root'"), False),
    (Exception(1146, "Table 'test.nope' doesn't exist"), False),
])
def test_which_errors_are_retried(orig: Exception, transient: bool) -> None:
    assert is_transient(OperationalError("select 1", {}, orig)) is transient


def test_urls_get_the_platform_driver_and_are_shown_without_password() -> None:
    def connection(url: str) -> SqlDatabaseConnection:
        parsed = parse_connection("sql_database", {"url": url, "endpoints": {"t": {"table": "t"}}}, resolved=True)
        assert isinstance(parsed, SqlDatabaseConnection)
        return parsed

    url = database_url(connection("postgresql://reader:pa55-w0rd@db.example.com:5433/shop"))
    assert url.drivername == "postgresql+psycopg"
    assert shown(url) == "postgresql://reader:***@db.example.com:5433/shop"
    assert "pa55-w0rd" not in redact("failed: pa55-w0rd")  # the connector remembered the password as a secret
    assert database_url(connection("mysql://root@127.0.0.1/test")).drivername == "mysql+pymysql"
    assert database_url(connection("mariadb+pymysql://root@127.0.0.1/test")).drivername == "mariadb+pymysql"
    parts = parse_connection("sql_database", {"driver": "mariadb", "host": "h", "user": "u", "password": "pw-123",
                                              "database": "d", "endpoints": {"t": {"table": "t"}}}, resolved=True)
    assert isinstance(parts, SqlDatabaseConnection)
    assert database_url(parts).render_as_string(hide_password=False) == "mariadb+pymysql://u:pw-123@h/d"
    with pytest.raises(SqlSourceError, match="the URL's database 'oracle' is not supported"):
        database_url(connection("oracle://u:secret-x@h/db"))
    with pytest.raises(SqlSourceError, match="names the driver 'psycopg2', which is not installed") as err:
        database_url(connection("postgresql+psycopg2://u:secret-y@h/db"))
    assert "secret-y" not in str(err.value)
    with pytest.raises(SqlSourceError, match="the secret of 'url' is not a database URL") as err:
        database_url(connection("not a url secret-z"))
    assert "secret-z" not in str(err.value)


def test_mysql_columns_read_by_meaning() -> None:
    from ingestion.connectors.sql_database import _json_valid_column, _MySqlTypes

    assert _json_valid_column("json_valid(`specs`)") == "specs"
    assert _json_valid_column("`a` > 0") is None
    types = _MySqlTypes(utc={"changed_at"}, json={"specs"}, boolean={"active"})
    row: dict[str, object] = {"changed_at": dt.datetime(2026, 1, 1, 0, 0, 1), "specs": '{"w": 1.250, "n": [1]}',
                              "active": 1, "other": 1}
    types.fix(row)
    assert row == {"changed_at": dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC), "specs": {"w": Decimal("1.250"),
                   "n": [1]}, "active": True, "other": 1}
    assert encode_row(row) == '{"changed_at":"2026-01-01T00:00:01+00:00","specs":{"w":1.250,"n":[1]},"active":true,' \
                              '"other":1}'


def test_loads_carry_the_stored_cursors_of_delta_endpoints_only() -> None:
    from ingestion.connectors.sql_database import SqlDatabaseConnector

    connection = parse_connection("sql_database", {"url": "postgresql://u@h/d", "endpoints": {
        "full": {"table": "a"}, "delta": {"table": "b", "load": "delta", "cursor_column": "id"}}}, resolved=True)
    stored = {"full": "7", "delta": "42", "gone": "1"}
    load = SqlDatabaseConnector().next_load("SQL01", connection, landed=set(), cursors=stored, base_dir=Path("."))
    assert load.cursors == {"delta": "42"}
    assert load.source_ref == load.timestamp.isoformat().replace("+00:00", "Z")
    again = SqlDatabaseConnector().find_load("SQL01", connection, "2026-01-02T03:04:05.000006Z", cursors=stored,
                                             base_dir=Path("."))
    assert (again.timestamp, again.cursors) == (dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), {"delta": "42"})


def test_column_names_of_a_reflected_table_are_written_in_one_pass() -> None:
    from sqlalchemy.sql.elements import quoted_name

    assert encode_row({quoted_name("Price", True): Decimal("1.50"), "n": 1}) == '{"Price":1.50,"n":1}'
