"""The pgoutput decoder and the change records against real messages: a database of its own on the session's
embedded server (wal_level = logical), a slot made with `pg_create_logical_replication_slot(.., 'pgoutput')`,
changes peeked as the CDC reader peeks them. Also: LSN text, refused messages, the `cdc` metadata rules, slot names,
and a forced re-land refused."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from ingestion.connectors import connector_for, pgoutput
from ingestion.connectors.pg_cdc import PEEK, CdcError, ChangeReader, Where, cdc_name, connect
from ingestion.connectors.sql_database import SqlSourceError
from metadata.models import parse_connection

DDL = """
create table kinds (id int primary key, amount numeric(10, 2), at timestamptz, naive timestamp, doc jsonb,
                    raw bytea, flag boolean, day date, span interval, tags int[], ratio float8, note text);
create publication pub_kinds for table kinds;
"""


@pytest.fixture
def database(warehouse: str) -> Iterator[str]:
    name = f"pgoutput_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = warehouse.rsplit("/", 1)[0] + f"/{name}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DDL)
            conn.execute("select pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
        yield url
    finally:
        with psycopg.connect(warehouse, autocommit=True) as conn:
            conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = %s",
                         (name,))
            conn.execute(f"drop database if exists {name} with (force)")


def _peek(url: str) -> list[bytes]:
    slot = url.rsplit("/", 1)[1]
    with psycopg.connect(url) as conn:
        return [bytes(r[0]) for r in conn.execute(PEEK, (slot, "pub_kinds")).fetchall()]


def _records(url: str, messages: list[bytes]) -> list[dict[str, Any]]:
    where = Where("SQX01", "kinds", "public.kinds", "dp_sqx01_kinds", "server")
    with connect(make_url(url), timeout=10) as conn:
        reader = ChangeReader(conn, where, ["id"])
        return [json.loads(text, parse_float=Decimal) for data in messages
                for text in reader.records(pgoutput.decode(data))]


def test_messages_of_a_transaction_decode_with_their_positions(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        before = pgoutput.lsn_number(conn.execute("select pg_current_wal_lsn()::text").fetchone()[0])
        conn.execute("insert into kinds (id, amount, note) values (1, 1.50, 'a'), (2, null, null)")
        after = pgoutput.lsn_number(conn.execute("select pg_current_wal_lsn()::text").fetchone()[0])
    begin, relation, first, second, commit = (pgoutput.decode(m) for m in _peek(database))
    assert isinstance(begin, pgoutput.Begin) and isinstance(commit, pgoutput.Commit)
    assert before < begin.final_lsn == commit.commit_lsn < commit.end_lsn <= after
    assert begin.committed_at == commit.committed_at
    assert abs(commit.committed_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert isinstance(relation, pgoutput.Relation)
    assert (relation.namespace, relation.name, relation.replica_identity) == ("public", "kinds", "d")
    assert [(c.name, c.type_oid, c.key) for c in relation.columns][:3] == [("id", 23, True), ("amount", 1700, False),
                                                                           ("at", 1184, False)]
    assert relation.columns[1].type_modifier == (10 << 16 | 2) + 4  # numeric(10, 2), as PostgreSQL encodes it
    assert isinstance(first, pgoutput.Insert) and first.relation_oid == relation.oid
    assert first.new[:3] == (b"1", b"1.50", None) and first.new[-1] == b"a"
    assert isinstance(second, pgoutput.Insert) and second.new[1:] == (None,) * 11


def test_changes_become_records_with_the_values_a_select_gives(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into kinds values (1, 1.50, '2026-01-02T08:30:00+01:00', '2026-01-02T08:30:00.5',"
                     " '{\"w\": 1.250, \"l\": [1, 2.0]}', '\\x00ff10', true, '2026-01-02', '1 day 02:00:00.25',"
                     " '{1,2}', 'NaN', 'x')")
        conn.execute("update kinds set amount = 2.00 where id = 1")
        conn.execute("update kinds set id = 10 where id = 1")  # the key changes
        conn.execute("delete from kinds where id = 10")
    records = _records(database, _peek(database))
    lsns = [r.pop("cdc_lsn") for r in records]
    assert records[0] == {"id": 1, "amount": Decimal("1.50"), "at": "2026-01-02T07:30:00+00:00",
                          "naive": "2026-01-02T08:30:00.500000",
                          "doc": {"w": Decimal("1.250"), "l": [1, Decimal("2.0")]},
                          "raw": "AP8Q", "flag": True, "day": "2026-01-02", "span": "P1DT7200.25S", "tags": [1, 2],
                          "ratio": "NaN", "note": "x", "cdc_op": "i"}
    assert records[1] == {**records[0], "amount": Decimal("2.00"), "cdc_op": "u"}
    # The key's update: a delete of the old key (only the key: the rest is not sent), then the row under the new one.
    assert records[2] == {"id": 1, "cdc_op": "d"}
    assert records[3] == {**records[1], "id": 10, "cdc_op": "u"}
    assert records[4] == {"id": 10, "cdc_op": "d"}
    assert lsns[2] == lsns[3] and len(set(lsns)) == 4  # one commit LSN per transaction
    assert all(pgoutput.lsn_number(a) < pgoutput.lsn_number(b) for a, b in zip(lsns[1:], lsns[3:], strict=False))


def test_replica_identity_full_sends_whole_rows_and_unchanged_toast_values(database: str) -> None:
    big = "".join(uuid.uuid4().hex for _ in range(400))  # 12800 characters that hardly compress: stored out of line
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into kinds (id, amount, note) values (1, 1.00, %s)", (big,))
        conn.execute("update kinds set amount = 2.00 where id = 1")  # the note is not sent
    messages = _peek(database)
    update = pgoutput.decode(messages[-2])
    assert isinstance(update, pgoutput.Update) and update.old is None and update.new[-1] == pgoutput.UNCHANGED_TOAST
    with pytest.raises(CdcError, match="an update left column 'note' unchanged and stored out of line .* ALTER TABLE "
                                       "public.kinds REPLICA IDENTITY FULL"):
        _records(database, messages)

    with psycopg.connect(database, autocommit=True) as conn:
        slot = database.rsplit("/", 1)[1]
        end = conn.execute("select pg_current_wal_lsn()::text").fetchone()[0]
        conn.execute("select pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, end))
        conn.execute("alter table kinds replica identity full")
        conn.execute("update kinds set amount = 3.00 where id = 1")
        conn.execute("delete from kinds where id = 1")
    messages = _peek(database)
    update, delete = (pgoutput.decode(m) for m in messages if m[:1] in (b"U", b"D"))
    assert isinstance(update, pgoutput.Update) and update.old_kind == "O"
    assert isinstance(delete, pgoutput.Delete) and delete.old_kind == "O"
    records = _records(database, messages)
    assert [(r["cdc_op"], r["amount"], r["note"] == big) for r in records] == [("u", Decimal("3.00"), True),
                                                                           ("d", Decimal("3.00"), True)]


def test_a_truncate_fails_with_what_to_do(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("insert into kinds (id) values (1)")
        conn.execute("truncate kinds")
    messages = _peek(database)
    assert isinstance(pgoutput.decode(messages[-2]), pgoutput.Truncate)
    with pytest.raises(CdcError, match="the table was truncated .* dataplatform cdc drop-slot SQX01 kinds"):
        _records(database, messages)


def test_lsn_text_and_refused_messages() -> None:
    assert pgoutput.lsn_text(pgoutput.lsn_number("16/B374D848")) == "16/B374D848"
    assert pgoutput.lsn_number("0/0") == 0
    for bad in ("", "16", "x/y"):
        with pytest.raises(ValueError):
            pgoutput.lsn_number(bad)
    for data, problem in ((b"", "empty"), (b"Z", "unknown message tag 'Z'"), (b"B\x00", "message ends"),
                          (b"I\x00\x00\x00\x01X", "tagged 'X'")):
        with pytest.raises(pgoutput.PgOutputError, match=problem):
            pgoutput.decode(data)


def test_cdc_metadata_rules_and_names() -> None:
    def endpoint(**spec: Any) -> dict[str, Any]:
        return {"url": {"type": "secret", "key": "x/url"}, "endpoints": {"items": spec}}

    parse_connection("sql_database", endpoint(table="public.items", load="cdc"))
    for spec, problem in (({"query": "select 1", "load": "cdc"}, "give 'table', not 'query'"),
                          ({"table": "t", "load": "cdc", "cursor_column": "id"}, "go with load 'delta', not 'cdc'")):
        with pytest.raises(ValidationError, match=problem):
            parse_connection("sql_database", endpoint(**spec))
    with pytest.raises(ValidationError, match="endpoints.items: load 'cdc' reads PostgreSQL's logical replication"):
        parse_connection("sql_database", {"driver": "mariadb", "host": "h", "user": "u", "database": "d",
                                          "endpoints": {"items": {"table": "t", "load": "cdc"}}})
    assert cdc_name("SQL01", "orders") == "dp_sql01_orders"
    long = cdc_name("SQL01", "a" * 60)
    assert len(long) == 63 and long.startswith("dp_sql01_aaa") and long != cdc_name("SQL01", "a" * 61)


def test_a_cdc_endpoint_cannot_be_relanded_and_needs_postgresql(tmp_path: Path) -> None:
    connection = parse_connection("sql_database", {"url": "mysql://u:cdc-test-pw-42@127.0.0.1:1/d", "endpoints": {
        "items": {"table": "items", "load": "cdc"}}}, resolved=True)
    with pytest.raises(SqlSourceError, match="batch 2026-01-01T00:00:00Z cannot be read again: endpoint items is "
                                             "read by change data capture.* dataplatform cdc drop-slot SQL01 items"):
        connector_for("sql_database").find_load("SQL01", connection, "2026-01-01T00:00:00Z",
                                                cursors={"items": "0/1"}, base_dir=tmp_path)
    from ingestion.connectors import sql_cdc

    with pytest.raises(CdcError, match="system SQL01, endpoint items, table items on "
                                       "mysql://u:\\*\\*\\*@127.0.0.1:1/d .*the URL names 'mysql'; use load 'delta'"):
        sql_cdc.where(connection, "SQL01", "items")
