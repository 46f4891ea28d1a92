"""A MongoDB system end to end (`dataplatform run` in subprocesses, real PostgreSQL, dbt and Dagster; NX-27017, a
MongoDB wire-protocol server started on loopback by tests/mongo_wire_server.py, or a real MongoDB when
DATAPLATFORM_TEST_MONGODB_URL is set): landed payloads as relaxed Extended JSON by value, the cursor after each
batch (audit.cursor and audit.batch_cursor, the largest date as Extended JSON text), the boundary document read
again on day 2, a run that finds no server keeps nothing and leaves the cursor (no password anywhere), a document
changed on day 2 makes exactly one new silver version, a forced re-land reads again from where its batch started,
a document soft-deleted on day 3 closes its key in silver at day 3's timestamp and re-created on day 4 opens a new
version, and `dataplatform check`.

The test system MGO01 (tests/e2e/mongo_metadata, model in mongo_models.py) runs in a database of its own on the
session's server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymongo
import pytest
from bson import ObjectId
from mongo_wire_server import fresh_database, mongodb_server
from warehouse_db import declarations_with, rows
from warehouse_db import fresh_database as fresh_warehouse_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
UTC = dt.UTC
DAY1 = dt.datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "pw-never-shown-4711"


def cli(url: str, home: Path, metadata: Path, mongodb_url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "PG"))}
    env.update(DATAPLATFORM_DATABASE_URL=url, DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               DATAPLATFORM_METADATA_DIR=str(metadata), DATAPLATFORM_ENV_FILE=str(home / "absent.env"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), str(HERE.parent)]),
               DATAPLATFORM_SECRET_MGO01_URL=mongodb_url)
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def landed(url: str, batch_id: int) -> list[dict[str, Any]]:
    return [r["payload"] for r in rows(url, "select payload from landing.mgo01_products where _batch_id = %s"
                                            " order by _record_no", (batch_id,))]


def cursors(url: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in rows(url, "select endpoint, value, batch_id from audit.cursor"
                                                 " where system_id = 'MGO01'")]


def batch_cursors(url: str) -> list[tuple[Any, ...]]:
    query = ("select batch_id, endpoint, start_value, end_value from audit.batch_cursor where system_id = 'MGO01'"
             " order by batch_id")
    return [tuple(r.values()) for r in rows(url, query)]


def _oid(n: int) -> ObjectId:
    return ObjectId(f"65a1b2c3d4e5f607182930{n:02x}")


def product(n: int, *, name: str | None = None, updated_at: dt.datetime | None = None,
            active: bool = True) -> dict[str, Any]:
    return {"_id": _oid(n), "sku": f"P{n}", "name": name or f"product {n}", "stock": n * 10, "active": active,
            "notes": "internal", "updated_at": updated_at or DAY1 + dt.timedelta(hours=n)}


def as_landed(document: dict[str, Any]) -> dict[str, Any]:
    """What a document lands as: relaxed Extended JSON, without the projected-away `notes`."""
    at = document["updated_at"].isoformat(timespec="milliseconds").replace(".000", "").replace("+00:00", "Z")
    return {"_id": {"$oid": str(document["_id"])}, "sku": document["sku"], "name": document["name"],
            "stock": document["stock"], "active": document["active"], "updated_at": {"$date": at},
            **({"deleted": document["deleted"]} if "deleted" in document else {})}


def test_a_mongodb_system_lands_extended_json_by_its_date_cursor_and_keeps_history(
        warehouse: str, tmp_path: Path) -> None:
    with mongodb_server(tmp_path / "mongodb") as server, fresh_database(server) as mongodb_url:
        parts = urlsplit(mongodb_url)
        name = parts.path.strip("/")
        collection = pymongo.MongoClient(mongodb_url, tz_aware=True).get_default_database().products
        url = fresh_warehouse_database(warehouse, "mongodb_pipeline")
        home = tmp_path / "home"
        metadata = declarations_with(tmp_path, "mongo_metadata", lambda s: s["connection"].update(database=name))
        (home / "dagster").mkdir(parents=True)
        server_url = f"{parts.scheme}://{parts.netloc}/"

        outputs: list[str] = []

        def run(*args: str, mongodb: str = server_url) -> tuple[int, str]:
            code, output = cli(url, home, metadata, mongodb, "run", "--system", "MGO01", *args)
            outputs.append(output)
            return code, output

        # Day 1: every active document (P9 is not), from the beginning (no cursor yet).
        day1_docs = [product(n) for n in (1, 2, 3)]
        collection.insert_many([*day1_docs, product(9, active=False)])
        code, output = run()
        assert code == 0, output
        [day1] = [r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch where system_id = 'MGO01'")]
        assert landed(url, day1) == [as_landed(d) for d in day1_docs]
        assert cursors(url) == [("products", '{"$date": "2026-01-01T03:00:00Z"}', day1)]
        assert batch_cursors(url) == [(day1, "products", None, '{"$date": "2026-01-01T03:00:00Z"}')]

        # Day 2: P2 is renamed (its date moves to day 2), P4 arrives; P3, whose date equals the cursor, is read again.
        renamed = product(2, name="product 2, renamed", updated_at=dt.datetime(2026, 1, 2, tzinfo=UTC))
        collection.replace_one({"_id": _oid(2)}, renamed)  # not $set: NX-27017 would store the date as text
        new = product(4, updated_at=dt.datetime(2026, 1, 2, 1, 30, 0, 250000, tzinfo=UTC))
        collection.insert_one(new)

        # The first try finds no server (retried, then failed): nothing kept, the cursor where it was, no password.
        code, output = run(mongodb=f"mongodb://reader:{PASSWORD}@127.0.0.1:9/")
        assert code == 1, output
        assert (f"mongodb endpoint products (collection 'products' of database {name!r}): no answer from the server "
                "after 2 attempt(s) (ServerSelectionTimeoutError") in output
        assert rows(url, "select count(*) as n from landing.mgo01_products") == [{"n": 3}]
        assert cursors(url) == [("products", '{"$date": "2026-01-01T03:00:00Z"}', day1)]
        failed = rows(url, "select status, message from audit.system_run where system_id = 'MGO01'"
                           " order by system_run_id desc limit 1")[0]
        assert failed["status"] == "failed" and "no answer from the server" in failed["message"]

        code, output = run()
        assert code == 0, output
        day2 = max(r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch"
                                                    " where system_id = 'MGO01'"))
        assert landed(url, day2) == [as_landed(day1_docs[2]), as_landed(renamed), as_landed(new)]
        assert landed(url, day2)[2]["updated_at"] == {"$date": "2026-01-02T01:30:00.250Z"}
        assert cursors(url) == [("products", '{"$date": "2026-01-02T01:30:00.250Z"}', day2)]
        assert batch_cursors(url) == [
            (day1, "products", None, '{"$date": "2026-01-01T03:00:00Z"}'),
            (day2, "products", '{"$date": "2026-01-01T03:00:00Z"}', '{"$date": "2026-01-02T01:30:00.250Z"}')]

        # Silver: one new version for the renamed product, none for P3 read again at the boundary.
        silver = rows(url, "select sku, name, _opened_by_batch_id, _closed_by_batch_id from silver.mgo01_product"
                           " order by sku, valid_from")
        assert [tuple(r.values()) for r in silver] == [
            ("P1", "product 1", day1, None),
            ("P2", "product 2", day1, day2),
            ("P2", "product 2, renamed", day2, None),
            ("P3", "product 3", day1, None),
            ("P4", "product 4", day2, None),
        ]
        # The date landed as Extended JSON ({"$date": ...}) is the declared timestamp in bronze and silver.
        assert rows(url, "select updated_at from silver.mgo01_product where sku = 'P4'") == [
            {"updated_at": dt.datetime(2026, 1, 2, 1, 30, 0, 250000, tzinfo=UTC)}]
        assert rows(url, "select pg_typeof(updated_at)::text as t from bronze.mgo01_product limit 1") == [
            {"t": "timestamp with time zone"}]

        # A forced re-land of day 2 reads again from where day 2 started; its rows replace the old ones, silver
        # does not change.
        code, output = run("--force", "--batch", str(day2))
        assert code == 0, output
        assert landed(url, day2) == [as_landed(day1_docs[2]), as_landed(renamed), as_landed(new)]
        assert rows(url, "select count(*) as n from landing.mgo01_products") == [{"n": 6}]
        assert cursors(url) == [("products", '{"$date": "2026-01-02T01:30:00.250Z"}', day2)]
        assert rows(url, "select count(*) as n from silver.mgo01_product") == [{"n": 5}]

        # Day 3: P1 is soft-deleted (saved with deleted: true); silver closes its version at day 3's timestamp.
        collection.replace_one({"_id": _oid(1)}, {**product(1, updated_at=dt.datetime(2026, 1, 3, tzinfo=UTC)),
                                                  "deleted": True})
        code, output = run()
        assert code == 0, output
        day3, day3_ts = [(r["batch_id"], r["batch_timestamp"]) for r in rows(
            url, "select batch_id, batch_timestamp from audit.system_run where system_id = 'MGO01'"
                 " and status = 'succeeded' order by batch_id desc limit 1")][0]
        p1 = "select name, valid_from, valid_to, _opened_by_batch_id, _closed_by_batch_id from silver.mgo01_product" \
             " where sku = 'P1' order by valid_from"
        assert [(r["valid_to"], r["_closed_by_batch_id"]) for r in rows(url, p1)] == [(day3_ts, day3)]
        assert rows(url, "select deleted from audit.entity_layer_run where layer = 'silver' and batch_id = %s",
                    (day3,)) == [{"deleted": 1}]

        # Day 4: P1 comes back (deleted: false): a new version opens; the closed one stays as it was.
        collection.replace_one({"_id": _oid(1)}, {**product(1, name="product 1, back",
                                                            updated_at=dt.datetime(2026, 1, 4, tzinfo=UTC)),
                                                  "deleted": False})
        code, output = run()
        assert code == 0, output
        day4 = max(r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch"
                                                    " where system_id = 'MGO01'"))
        assert [(r["name"], r["_opened_by_batch_id"], r["_closed_by_batch_id"]) for r in rows(url, p1)] == [
            ("product 1", day1, day3), ("product 1, back", day4, None)]

        # No password anywhere: the CLI's output, the state folder, the audit tables.
        assert not [o for o in outputs if PASSWORD in o]
        assert [str(p) for p in home.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()] == []
        for table in ("system_run", "system_layer_run", "entity_layer_run", "cursor", "batch_cursor"):
            assert PASSWORD not in json.dumps(rows(url, f"select * from audit.{table}"), default=str), table

        # `dataplatform check`: the server answers and the collection is there.
        code, output = cli(url, home, metadata, server_url, "check", "MGO01")
        assert (code, output) == (0, "MGO01.products: ok: answers, no credentials in the URL, collection 'products' "
                                     "exists; a first matching document read\n")
