"""A `files` system end to end (`dataplatform run --system FIL01` in subprocesses: the real Dagster job, dlt,
dbt, on a real PostgreSQL): CSV drops in cp1252 with ';' and gzipped JSON lines drops land as-is, each run
lands only the files that arrived since the last batch, a run with nothing new lands nothing, a file
rewritten in place lands again, `audit.cursor` / `audit.batch_cursor` say where each endpoint stands, a
changed customer makes one new silver version, a bad file fails the batch naming system, endpoint, file and
line and keeps nothing (the cursor stays), and a forced re-land lands the same files again.

The test system FIL01 (tests/e2e/files_metadata, models in files_models.py) runs beside the bundled TST01 in
a database of its own on the session's server.
"""

from __future__ import annotations

import decimal
import gzip
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from warehouse_db import declarations_with, fresh_database, rows

from ingestion.connectors.files import cursor_value
from metadata.catalog import load_catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NS = 1_000_000_000
T0 = (int(time.time()) - 3600) * NS  # file times are set explicitly, an hour back: settled, and in order


def drop(home: Path, name: str, data: bytes, *, at: int) -> int:
    """A file in FIL01's folder with modification time T0 + `at` seconds; returns that time in ns."""
    path = home / "sources" / "FIL01" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    mtime = T0 + at * NS
    os.utime(path, ns=(mtime, mtime))
    return mtime


def customers_csv(*lines: str) -> bytes:
    return "\r\n".join(["customer_id;name;city", *lines, ""]).encode("cp1252")


def orders_jsonl(*records: str) -> bytes:
    return gzip.compress("\n".join(records).encode())


def run(url: str, home: Path, metadata: Path, *extra: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "PG"))}
    env.update(DATAPLATFORM_DATABASE_URL=url, DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               DATAPLATFORM_METADATA_DIR=str(metadata), PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--system", "FIL01", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def batch_ids(url: str) -> list[int]:
    return [r["batch_id"] for r in rows(url, "select batch_id from audit.system_run where system_id = 'FIL01'"
                                             " and status = 'succeeded' order by batch_timestamp")]


def landed(url: str, table: str, batch_id: int) -> list[Any]:
    return [r["payload"] for r in rows(url, f"select payload from landing.{table} where _batch_id = %s"
                                            " order by _record_no", (batch_id,))]


def cursors(url: str) -> dict[str, tuple[str, int]]:
    return {r["endpoint"]: (r["value"], r["batch_id"]) for r in rows(
        url, "select endpoint, value, batch_id from audit.cursor where system_id = 'FIL01'")}


def batch_cursors(url: str, batch_id: int) -> dict[str, tuple[str | None, str]]:
    return {r["endpoint"]: (r["start_value"], r["end_value"]) for r in rows(
        url, "select endpoint, start_value, end_value from audit.batch_cursor where system_id = 'FIL01'"
             " and batch_id = %s", (batch_id,))}


def test_file_drops_land_batch_by_batch_by_cursor(warehouse: str, tmp_path: Path) -> None:
    url = fresh_database(warehouse, "files_drops")
    home, metadata = tmp_path / "home", declarations_with(tmp_path, "files_metadata")
    (home / "dagster").mkdir(parents=True)
    load_catalog(metadata)  # the test's declarations are valid

    # Batch 1: two customer files (one with a quoted ';' and a line break in a field) and one orders file.
    drop(home, "customers/2026-01-01.csv", customers_csv('007;"Müller; Jürgen";Köln', "008;Ana;"), at=10)
    c2 = drop(home, "customers/2026-01-02.csv", customers_csv('009;"Zoë\r\nand Co";Åre'), at=20)
    o1 = drop(home, "orders/2026-01-01.jsonl.gz",
              orders_jsonl('{"order_id": 1, "customer_id": "007", "amount": 12.50}',
                           '{"order_id":2,"customer_id":"008","amount":3}'), at=15)
    code, output = run(url, home, metadata)
    assert code == 0, output
    (b1,) = batch_ids(url)
    assert landed(url, "fil01_customers", b1) == [
        {"customer_id": "007", "name": "Müller; Jürgen", "city": "Köln"},
        {"customer_id": "008", "name": "Ana", "city": ""},
        {"customer_id": "009", "name": "Zoë\r\nand Co", "city": "Åre"},
    ]
    assert landed(url, "fil01_orders", b1) == [
        {"order_id": 1, "customer_id": "007", "amount": 12.50}, {"order_id": 2, "customer_id": "008", "amount": 3}]
    after_1 = {"customers": (cursor_value(c2, "customers/2026-01-02.csv"), b1),
               "orders": (cursor_value(o1, "orders/2026-01-01.jsonl.gz"), b1)}
    assert cursors(url) == after_1
    assert batch_cursors(url, b1) == {"customers": (None, after_1["customers"][0]),
                                      "orders": (None, after_1["orders"][0])}

    # A run with nothing new lands nothing: no batch, the cursor where it was.
    code, output = run(url, home, metadata)
    assert code == 0, output
    assert batch_ids(url) == [b1] and cursors(url) == after_1

    # Batch 2: a new customers file only; customer 008 changed, 007 sent again unchanged.
    c3 = drop(home, "customers/2026-01-03.csv", customers_csv("008;Ana;Porto", '007;"Müller; Jürgen";Köln'), at=30)
    code, output = run(url, home, metadata)
    assert code == 0, output
    b2 = batch_ids(url)[-1]
    assert b2 > b1
    assert landed(url, "fil01_customers", b2) == [
        {"customer_id": "008", "name": "Ana", "city": "Porto"},
        {"customer_id": "007", "name": "Müller; Jürgen", "city": "Köln"}]
    assert landed(url, "fil01_orders", b2) == []
    after_2 = {"customers": (cursor_value(c3, "customers/2026-01-03.csv"), b2),
               "orders": (after_1["orders"][0], b2)}
    assert cursors(url) == after_2
    assert batch_cursors(url, b2) == {"customers": (after_1["customers"][0], after_2["customers"][0]),
                                      "orders": (after_1["orders"][0], after_1["orders"][0])}

    # Silver: one new version for the changed customer, none for the one sent again unchanged.
    silver = rows(url, "select customer_id, name, city, _opened_by_batch_id, _closed_by_batch_id"
                       " from silver.fil01_customer order by customer_id, valid_from")
    assert silver == [
        {"customer_id": "007", "name": "Müller; Jürgen", "city": "Köln", "_opened_by_batch_id": b1,
         "_closed_by_batch_id": None},
        {"customer_id": "008", "name": "Ana", "city": "", "_opened_by_batch_id": b1, "_closed_by_batch_id": b2},
        {"customer_id": "008", "name": "Ana", "city": "Porto", "_opened_by_batch_id": b2, "_closed_by_batch_id": None},
        {"customer_id": "009", "name": "Zoë\r\nand Co", "city": "Åre", "_opened_by_batch_id": b1,
         "_closed_by_batch_id": None},
    ]

    # Batch 3: the orders file rewritten in place (a new modification time) lands again, with its new content.
    o1_again = drop(home, "orders/2026-01-01.jsonl.gz",
                    orders_jsonl('{"order_id": 1, "customer_id": "007", "amount": 13.00}'), at=40)
    code, output = run(url, home, metadata)
    assert code == 0, output
    b3 = batch_ids(url)[-1]
    assert b3 > b2
    assert landed(url, "fil01_orders", b3) == [{"order_id": 1, "customer_id": "007", "amount": 13.00}]
    assert landed(url, "fil01_customers", b3) == []
    assert cursors(url)["orders"] == (cursor_value(o1_again, "orders/2026-01-01.jsonl.gz"), b3)
    orders = rows(url, "select order_id, amount, _closed_by_batch_id is null as current from silver.fil01_shop_order"
                       " order by order_id, valid_from")
    assert [(r["order_id"], r["amount"], r["current"]) for r in orders] == [
        (1, decimal.Decimal("12.50"), False), (1, decimal.Decimal("13.00"), True), (2, decimal.Decimal("3"), True)]
    bronze = rows(url, "select _batch_id, order_id, amount from bronze.fil01_shop_order order by _batch_id, order_id")
    assert [(r["_batch_id"], r["order_id"]) for r in bronze] == [(b1, 1), (b1, 2), (b3, 1)]

    # A CSV row with a field too many fails the batch at once, naming system, endpoint, file and line; nothing
    # of the batch is kept and the cursors stay where they were.
    before = cursors(url)
    drop(home, "customers/2026-01-04.csv", customers_csv("010;Bo;Oslo", "011;Cy;Rome;extra"), at=50)
    code, output = run(url, home, metadata)
    assert code != 0, output
    assert "FIL01" in output and "endpoint customers, file " in output and "2026-01-04.csv, line 3: 4 fields, but " \
        "the header has 3" in output, output
    failed = rows(url, "select batch_id, status from audit.system_run where system_id = 'FIL01' order by"
                       " system_run_id desc limit 1")[0]
    assert failed["status"] == "failed" and failed["batch_id"] not in batch_ids(url)
    assert landed(url, "fil01_customers", failed["batch_id"]) == [] and cursors(url) == before

    # The file fixed (rewritten, so a new time) lands with the next run; a forced re-land lands it again.
    c4 = drop(home, "customers/2026-01-04.csv", customers_csv("010;Bo;Oslo", "011;Cy;Rome"), at=60)
    code, output = run(url, home, metadata)
    assert code == 0, output
    b4 = batch_ids(url)[-1]
    fixed = [{"customer_id": "010", "name": "Bo", "city": "Oslo"}, {"customer_id": "011", "name": "Cy", "city": "Rome"}]
    assert landed(url, "fil01_customers", b4) == fixed
    assert cursors(url)["customers"] == (cursor_value(c4, "customers/2026-01-04.csv"), b4)
    code, output = run(url, home, metadata, "--force")
    assert code == 0, output
    assert batch_ids(url)[-1] == b4 and landed(url, "fil01_customers", b4) == fixed
    end = cursor_value(c4, "customers/2026-01-04.csv")
    assert batch_cursors(url, b4)["customers"] == (after_2["customers"][0], end)
