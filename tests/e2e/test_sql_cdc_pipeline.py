"""Change data capture end to end (`dataplatform run` in subprocesses, real PostgreSQL logical replication, dbt and
Dagster): the source is a database of its own on the session's embedded server, which runs with wal_level =
logical. The first batch is a snapshot (`cdc_op` "r"); then inserts, updates (two in one transaction, last one wins),
an update of the key and deletes land with their operation and commit LSN and reach silver: a deleted key closed
at its batch's timestamp, a re-created key opening a new version. A run killed after reading the changes and before
its batch landed leaves the cursor and the slot: the next run lands the same changes exactly once. `status` shows
the slot's retained WAL (a warning above the threshold); a slot dropped on the source fails the batch with one
message naming system, endpoint, table and slot and how to take a new snapshot; `check` says the same;
`dataplatform cdc drop-slot` then forgets the position and the next run takes a new snapshot.

The test system SQC01 (tests/e2e/cdc_metadata, model sql_models.CdcItem) runs in a warehouse database of its own.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from sqlalchemy.engine import make_url
from warehouse_db import OneSecret, database_url, declarations_with, drop_source_database, fresh_database

from ingestion.connectors.pg_cdc import cdc_name
from metadata.catalog import load_catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SLOT = cdc_name("SQC01", "items")

SOURCE_DDL = """
create table items (id bigint primary key, name text not null, price numeric(10, 2) not null,
                    changed_at timestamptz not null);
insert into items values (1, 'bolt', 1.50, '2026-01-01T00:00:01Z'), (2, 'nut', 0.20, '2026-01-01T00:00:02Z'),
                         (3, 'gear', 12.00, '2026-01-01T00:00:03Z');
"""


@pytest.fixture
def source(warehouse: str) -> Iterator[str]:
    """A uniquely named source database with the items table; its slots and the database dropped afterwards."""
    name = f"cdc_source_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(f"create database {name}")
    url = database_url(warehouse, name)
    try:
        with psycopg.connect(url) as conn:
            conn.execute(SOURCE_DDL)
        yield url
    finally:
        drop_source_database(warehouse, name)


def rows(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        set_json_loads(functools.partial(json.loads, parse_float=Decimal), conn)  # 0.20 stays 0.20
        conn.execute("set TimeZone = 'UTC'")
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()


class Platform:
    """`dataplatform` commands against the test's warehouse database, metadata and source."""

    def __init__(self, url: str, home: Path, metadata: Path, source: str) -> None:
        self.url, self.home, self.metadata, self.source = url, home, metadata, source
        self.outputs: list[str] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "PG"))}
        full.update(DATAPLATFORM_DATABASE_URL=self.url, DATAPLATFORM_HOME=str(self.home),
                    DAGSTER_HOME=str(self.home / "dagster"), DATAPLATFORM_METADATA_DIR=str(self.metadata),
                    DATAPLATFORM_ENV_FILE=str(self.home / "absent.env"),
                    PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), str(HERE.parent)]),
                    DATAPLATFORM_SECRET_SQC01_URL=self.source, **(env or {}))
        return subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=full, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        process = self.start(*args, env=env)
        output, _ = process.communicate(timeout=900)
        self.outputs.append(output)
        return process.returncode, output


def landed(url: str, batch_id: int) -> list[dict[str, Any]]:
    return [r["payload"] for r in rows(url, "select payload from landing.sqc01_items where _batch_id = %s"
                                            " order by _record_no", (batch_id,))]


def batches(url: str) -> list[int]:
    return [r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch where system_id = 'SQC01'"
                                             " order by batch_id")]


def cursor(url: str) -> str | None:
    found = rows(url, "select value from audit.cursor where system_id = 'SQC01' and endpoint = 'items'")
    return found[0]["value"] if found else None


def slot_position(source: str) -> str | None:
    found = rows(source, "select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = %s",
                 (SLOT,))
    return found[0]["lsn"] if found else None


def silver(url: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in rows(
        url, "select id, name, price, _opened_by_batch_id, _closed_by_batch_id from silver.sqc01_cdc_item"
             " order by id, valid_from")]


def test_cdc_snapshot_then_changes_reach_silver_and_a_killed_run_rereads_them_once(
        warehouse: str, source: str, tmp_path: Path) -> None:
    password = make_url(source).password
    assert password
    url = fresh_database(warehouse, "sql_cdc")
    home, metadata = tmp_path / "home", declarations_with(tmp_path, "cdc_metadata")
    (home / "dagster").mkdir(parents=True)
    load_catalog(metadata, secrets=OneSecret("sqc01/url", source))  # the test's declarations are valid
    platform = Platform(url, home, metadata, source)

    # Day 1: the snapshot. The slot exists, its consistent point is the cursor and the LSN of every snapshot row.
    code, output = platform("run", "--system", "SQC01")
    assert code == 0, output
    [day1] = batches(url)
    point = cursor(url)
    assert point is not None and slot_position(source) == point
    assert landed(url, day1) == [
        {"id": 1, "name": "bolt", "price": Decimal("1.50"), "changed_at": "2026-01-01T00:00:01+00:00", "cdc_op": "r",
         "cdc_lsn": point},
        {"id": 2, "name": "nut", "price": Decimal("0.20"), "changed_at": "2026-01-01T00:00:02+00:00", "cdc_op": "r",
         "cdc_lsn": point},
        {"id": 3, "name": "gear", "price": Decimal("12.00"), "changed_at": "2026-01-01T00:00:03+00:00", "cdc_op": "r",
         "cdc_lsn": point},
    ]
    assert silver(url) == [(1, "bolt", Decimal("1.50"), day1, None), (2, "nut", Decimal("0.20"), day1, None),
                           (3, "gear", Decimal("12.00"), day1, None)]

    # Day 2: an insert, two updates of one row in one transaction, a key changed, a delete.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("insert into items values (4, 'spring', 0.05, '2026-01-02T00:00:00Z')")
        with conn.transaction():
            conn.execute("update items set price = 1.60 where id = 1")
            conn.execute("update items set price = 1.70, changed_at = '2026-01-02T00:00:01Z' where id = 1")
        conn.execute("update items set id = 20 where id = 2")
        conn.execute("delete from items where id = 3")
    # A run killed after reading the changes, its rows in landing, before the batch was marked landed.
    killed = platform.start("run", "--system", "SQC01", env={"DATAPLATFORM_FAULT_PAUSE": "landing:300"})
    _wait_for(home / "fault-landing", killed)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert cursor(url) == point and slot_position(source) == point  # neither moved
    # Its rows had gone to landing (the kill came after dlt's load, before the batch counted as landed).
    assert rows(url, "select count(*) as n from landing.sqc01_items where payload->>'cdc_op' <> 'r'") == [{"n": 6}]
    code, output = platform("run", "--system", "SQC01")
    assert code == 0, output
    day2 = batches(url)[-1]
    changes = landed(url, day2)
    assert [(c["cdc_op"], c["id"]) for c in changes] == [("i", 4), ("u", 1), ("u", 1), ("d", 2), ("u", 20), ("d", 3)]
    assert changes[3] == {"id": 2, "cdc_op": "d", "cdc_lsn": changes[4]["cdc_lsn"]}  # the old key: only the key
    assert changes[1]["cdc_lsn"] == changes[2]["cdc_lsn"]  # one transaction, one commit LSN
    # Exactly once: the killed run's rows are gone, every change landed in one batch only.
    assert rows(url, "select count(*) as n from landing.sqc01_items where payload->>'cdc_op' <> 'r'") == [{"n": 6}]
    assert cursor(url) == slot_position(source) != point  # the slot released what landed
    day2_at = rows(url, "select batch_timestamp from audit.landed_batch where batch_id = %s", (day2,))[0][
        "batch_timestamp"]
    assert silver(url) == [
        (1, "bolt", Decimal("1.50"), day1, day2), (1, "bolt", Decimal("1.70"), day2, None),
        (2, "nut", Decimal("0.20"), day1, day2),
        (3, "gear", Decimal("12.00"), day1, day2),
        (4, "spring", Decimal("0.05"), day2, None),
        (20, "nut", Decimal("0.20"), day2, None),
    ]
    closed = rows(url, "select valid_to from silver.sqc01_cdc_item where id = 3")
    assert closed == [{"valid_to": day2_at}]

    # Day 3: the deleted key comes back and opens a new version; a run with no change lands an empty batch.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("insert into items values (3, 'gear', 13.00, '2026-01-03T00:00:00Z')")
    code, output = platform("run", "--system", "SQC01")
    assert code == 0, output
    day3 = batches(url)[-1]
    assert [(c["cdc_op"], c["id"], c["price"]) for c in landed(url, day3)] == [("i", 3, Decimal("13.00"))]
    assert [r for r in silver(url) if r[0] == 3] == [(3, "gear", Decimal("12.00"), day1, day2),
                                                     (3, "gear", Decimal("13.00"), day3, None)]

    # status: the slot and what it retains; above the threshold, a warning naming what to do.
    code, output = platform("status")
    assert code == 0, output
    assert f"SQC01.items: replication slot {SLOT} (table public.items) retains" in output
    code, output = platform("status", env={"DATAPLATFORM_CDC_LAG_WARN_BYTES": "0"})
    assert code == 0, output
    assert "warning: SQC01.items: replication slot" in output and "dataplatform cdc drop-slot SQC01 items" in output

    # check: wal_level, privilege, publication and slot are fine.
    code, output = platform("check", "SQC01")
    assert code == 0, output
    assert "SQC01.items: ok:" in output and f"slot {SLOT} retains" in output

    # Someone drops the slot: the batch fails with one clear message, nothing of it kept; check says so too.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("select pg_drop_replication_slot(%s)", (SLOT,))
        conn.execute("update items set name = 'big gear' where id = 3")
    code, output = platform("run", "--system", "SQC01")
    assert code == 1, output
    assert ("system SQC01, endpoint items, table public.items on postgresql://" in output
            and f"(replication slot {SLOT}): the replication slot is gone" in output
            and "dataplatform cdc drop-slot SQC01 items" in output), output
    assert batches(url)[-1] == day3
    code, output = platform("check", "SQC01")
    assert code == 1, output
    assert "SQC01.items: FAILED:" in output and "the replication slot is gone" in output

    # drop-slot forgets the position; the next run takes a new snapshot of the table as it is.
    code, output = platform("cdc", "drop-slot", "SQC01", "items")
    assert code == 0, output
    assert "no replication slot was there" in output and "the next run of SQC01 takes a new snapshot" in output
    assert cursor(url) is None
    code, output = platform("run", "--system", "SQC01")
    assert code == 0, output
    day5 = batches(url)[-1]
    assert sorted((c["cdc_op"], c["id"], c["name"]) for c in landed(url, day5)) == [
        ("r", 1, "bolt"), ("r", 3, "big gear"), ("r", 4, "spring"), ("r", 20, "nut")]
    assert cursor(url) == slot_position(source) is not None
    assert [r[1] for r in silver(url) if r[0] == 3 and r[4] is None] == ["big gear"]

    # No secret anywhere.
    assert not [o for o in platform.outputs if password in o]
    for table in ("system_run", "system_layer_run", "entity_layer_run", "cursor", "batch_cursor"):
        assert password not in json.dumps(rows(url, f"select * from audit.{table}"), default=str), table


def _wait_for(marker: Path, process: subprocess.Popen[str], *, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended before its pause: {process.communicate()[0][-3000:]}"
        if marker.exists():
            return
        time.sleep(0.3)
    raise AssertionError(f"the run did not reach {marker.name} within {timeout}s")


