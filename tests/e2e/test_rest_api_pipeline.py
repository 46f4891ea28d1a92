"""A REST API system end to end (`dataplatform run` in subprocesses, real PostgreSQL, dbt and Dagster, the loopback
fixture API of tests/rest_fixture_server.py): landed payloads by value, the cursor after each batch
(audit.cursor and audit.batch_cursor), a run that fails mid-pagination keeps nothing and leaves the cursor, the
next run reads the same range again and lands each record once, a record changed on day 2 makes exactly one new
silver version (the boundary record read again makes none), a forced re-land reads again from where its batch
started, `dataplatform check`, and no secret anywhere: not in
the state folder (dlt's and Dagster's), the audit tables or the CLI's output.

The test system RST01 (tests/e2e/rest_metadata, model in rest_models.py) runs in a database of its own on the
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

import pytest
from rest_fixture_server import API_KEY, API_KEY_PARAM, record, serve
from warehouse_db import declarations_with, fresh_database, rows

from metadata.catalog import load_catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
UTC = dt.UTC
SECRET_ENV = {"DATAPLATFORM_SECRET_RST01_API_KEY": API_KEY}


class _Secrets:
    """The secrets the test's CLI runs get (SECRET_ENV), as a secret store."""

    def key_problem(self, key: str) -> str | None:
        return None

    def has(self, key: str) -> bool:
        return key == "rst01/api_key"

    def get(self, key: str) -> str:
        return API_KEY

    def describe(self, key: str) -> str:
        return key


def cli(url: str, home: Path, metadata: Path, *args: str, secrets: dict[str, str] | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "PG"))}
    env.update(DATAPLATFORM_DATABASE_URL=url, DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               DATAPLATFORM_METADATA_DIR=str(metadata), DATAPLATFORM_ENV_FILE=str(home / "absent.env"),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), str(HERE.parent)]),
               **(SECRET_ENV if secrets is None else secrets))
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def landed(url: str, batch_id: int) -> list[dict[str, Any]]:
    return [r["payload"] for r in rows(url, "select payload from landing.rst01_items where _batch_id = %s"
                                            " order by _record_no", (batch_id,))]


def cursors(url: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in rows(url, "select endpoint, value, batch_id from audit.cursor"
                                                 " where system_id = 'RST01'")]


def batch_cursors(url: str) -> list[tuple[Any, ...]]:
    query = ("select batch_id, endpoint, start_value, end_value from audit.batch_cursor where system_id = 'RST01'"
             " order by batch_id")
    return [tuple(r.values()) for r in rows(url, query)]


def test_a_rest_system_lands_by_cursor_survives_a_failed_pagination_and_keeps_history(
        warehouse: str, tmp_path: Path) -> None:
    outputs: list[str] = []
    with serve() as api:
        api.delta_needs_key = True
        url = fresh_database(warehouse, "rest_pipeline")
        home = tmp_path / "home"
        metadata = declarations_with(tmp_path, "rest_metadata", lambda s: s["connection"].update(base_url=api.url))
        (home / "dagster").mkdir(parents=True)
        load_catalog(metadata, secrets=_Secrets())  # the test's declarations are valid

        def run(*args: str) -> tuple[int, str]:
            code, output = cli(url, home, metadata, "run", "--system", "RST01", *args)
            outputs.append(output)
            return code, output

        # Day 1: every record, from the beginning (no cursor yet).
        code, output = run()
        assert code == 0, output
        [day1] = [r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch where system_id = 'RST01'")]
        assert landed(url, day1) == [record(n) for n in range(1, 6)]
        assert cursors(url) == [("items", "2026-01-01T00:00:05Z", day1)]
        assert batch_cursors(url) == [(day1, "items", None, "2026-01-01T00:00:05Z")]
        first = next(q for p, q, _ in api.requests if p == "/delta/items")
        assert first == {API_KEY_PARAM: API_KEY}  # no cursor sent on the first run

        # Day 2: item 2 changes, items 6-8 arrive; the API fails on page 3 (terminally): nothing of the batch is
        # kept and the cursor stays where it was.
        api.records[1] = record(2, name="item 2, renamed", updated_at="2026-01-02T00:00:00Z")
        api.records += [record(n, updated_at=f"2026-01-02T00:00:{n:02d}Z") for n in (6, 7, 8)]
        api.fail_on_page = 3
        code, output = run()
        assert code == 1, output
        assert f"endpoint items: GET {api.url}/delta/items answered HTTP 403 Forbidden" in output
        assert rows(url, "select count(*) as n from landing.rst01_items") == [{"n": 5}]
        assert cursors(url) == [("items", "2026-01-01T00:00:05Z", day1)]
        assert batch_cursors(url) == [(day1, "items", None, "2026-01-01T00:00:05Z")]
        failed = rows(url, "select status, message from audit.system_run where system_id = 'RST01'"
                           " order by system_run_id desc limit 1")[0]
        assert failed["status"] == "failed"
        assert "403" in failed["message"] and API_KEY not in failed["message"]

        # The API is fine again: the same range is read again, from the stored cursor (item 5, whose value equals
        # it, included), and each record lands once.
        api.fail_on_page = None
        before = len(api.requests)
        code, output = run()
        assert code == 0, output
        sent = next(q for p, q, _ in api.requests[before:] if p == "/delta/items")
        assert sent == {API_KEY_PARAM: API_KEY, "updated_since": "2026-01-01T00:00:05Z"}
        day2 = max(r["batch_id"] for r in rows(url, "select batch_id from audit.landed_batch"
                                                    " where system_id = 'RST01'"))
        assert landed(url, day2) == [record(5), api.records[1]] + api.records[5:]
        assert [p["id"] for p in landed(url, day2)] == [5, 2, 6, 7, 8]
        assert rows(url, "select count(*) as n from landing.rst01_items") == [{"n": 10}]
        assert cursors(url) == [("items", "2026-01-02T00:00:08Z", day2)]
        assert batch_cursors(url) == [(day1, "items", None, "2026-01-01T00:00:05Z"),
                                      (day2, "items", "2026-01-01T00:00:05Z", "2026-01-02T00:00:08Z")]

        # Silver: one new version for the changed item, none for item 5 read again at the boundary.
        silver = rows(url, "select id, name, _opened_by_batch_id, _closed_by_batch_id from silver.rst01_item"
                           " order by id, valid_from")
        assert [(r["id"], r["name"], r["_opened_by_batch_id"], r["_closed_by_batch_id"]) for r in silver] == [
            (1, "item 1", day1, None),
            (2, "item 2", day1, day2),
            (2, "item 2, renamed", day2, None),
            (3, "item 3", day1, None),
            (4, "item 4", day1, None),
            (5, "item 5", day1, None),
            (6, "item 6", day2, None),
            (7, "item 7", day2, None),
            (8, "item 8", day2, None),
        ]

        # A forced re-land of day 2 reads again from where day 2 started (audit.batch_cursor), whatever the cursor
        # says now; its rows replace the old ones and silver does not change.
        before = len(api.requests)
        code, output = run("--force", "--batch", str(day2))
        assert code == 0, output
        sent = next(q for p, q, _ in api.requests[before:] if p == "/delta/items")
        assert sent == {API_KEY_PARAM: API_KEY, "updated_since": "2026-01-01T00:00:05Z"}
        assert [p["id"] for p in landed(url, day2)] == [5, 2, 6, 7, 8]
        assert rows(url, "select count(*) as n from landing.rst01_items") == [{"n": 10}]
        assert batch_cursors(url) == [(day1, "items", None, "2026-01-01T00:00:05Z"),
                                      (day2, "items", "2026-01-01T00:00:05Z", "2026-01-02T00:00:08Z")]
        assert cursors(url) == [("items", "2026-01-02T00:00:08Z", day2)]
        assert rows(url, "select count(*) as n from silver.rst01_item") == [{"n": 9}]

        # `dataplatform check`: per endpoint, whether it answers; wrong credentials fail it (exit 1).
        code, output = cli(url, home, metadata, "check", "RST01")
        outputs.append(output)
        assert (code, output) == (0, "RST01.items: ok: answers, credentials accepted; 2 record(s) on the first page\n")
        code, output = cli(url, home, metadata, "check", "RST01",
                           secrets={"DATAPLATFORM_SECRET_RST01_API_KEY": "wrong-key-0815"})
        outputs.append(output)
        assert (code, output) == (1, f"RST01.items: FAILED: endpoint items: GET {api.url}/delta/items answered HTTP "
                                     "401 Unauthorized: the credentials were refused; check the secrets of 'auth'\n")
        assert "wrong-key-0815" not in output

        # No secret anywhere: the CLI's output, the state folder (dlt's and Dagster's files), the audit tables.
        assert not [o for o in outputs if API_KEY in o]
        leaked = [str(p) for p in home.rglob("*") if p.is_file() and API_KEY.encode() in p.read_bytes()]
        assert leaked == []
        for table in ("system_run", "system_layer_run", "entity_layer_run", "cursor", "batch_cursor"):
            text = json.dumps(rows(url, f"select * from audit.{table}"), default=str)
            assert API_KEY not in text, table
