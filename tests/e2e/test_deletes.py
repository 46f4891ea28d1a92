"""Deletes in delta loads, end to end (`dataplatform run` / `replay` in subprocesses, real PostgreSQL, dbt,
Dagster and Great Expectations): a delta entity's record that says its key was deleted (`deleted_when`)
closes the key's current version in silver at its batch's timestamp, and a later record for the key opens
a new one; a CDC operation field (`op = "d"`, a delete carrying only the key, which the gate lets through
although the model's attributes are required) and a soft-delete flag (`is_deleted = true`); a delete for
a key with no current version does nothing; a delete's other values open no version and overwrite no
SCD1 attribute; the audit rows count the deletes; a replay from the delete's batch gives the same
silver; a forced re-land that turns a delete into an update re-applies the batch.

The test system DEL01 (tests/e2e/deletes_metadata, models in deletes_models.py) runs beside the bundled
TST01 (gold needs its tables), in a database of its own on the session's server.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from warehouse_db import declarations_with, fresh_database, rows

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import load_catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
UTC = dt.UTC
DAY = {n: dt.datetime(2026, 3, n, tzinfo=UTC) for n in (1, 2, 3)}
D = decimal.Decimal


def write_json(path: Path, records: list[dict[str, Any]]) -> None:
    """The records as a JSON array; a Decimal is written as its exact number text (10.00 stays 10.00)."""
    text = json.dumps(records, default=lambda value: f"@raw:{value}@")
    path.write_text(re.sub(r'"@raw:([^@]*)@"', r"\1", text))


def deliver(home: Path, day: int, accounts: list[dict[str, Any]], members: list[dict[str, Any]]) -> None:
    folder = home / "sources" / "DEL01" / f"2026-03-0{day}"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "accounts.json", accounts)
    write_json(folder / "members.json", members)


def cli(url: str, home: Path, metadata: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "PG"))}
    env.update(DATAPLATFORM_DATABASE_URL=url, DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               DATAPLATFORM_METADATA_DIR=str(metadata), PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]))
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def account(account_id: int, op: str, name: str, balance: str, tier: str) -> dict[str, Any]:
    return {"op": op, "account_id": account_id, "name": name, "balance": D(balance), "tier": tier}


def silver(url: str, table: str, key: str, columns: str) -> list[dict[str, Any]]:
    return rows(url, f"select {key}, {columns}, valid_from, valid_to, valid_to is null as current,"
                     f" _opened_by_batch_id as opened, _closed_by_batch_id as closed"
                     f" from silver.{table} order by {key}, valid_from")


def counts(url: str, entity: str) -> list[tuple[int, int, int, int, str]]:
    return [(r["batch_id"], r["records_in"], r["inserted"], r["updated"], r["deleted"]) for r in rows(
        url, "select batch_id, records_in, inserted, updated, deleted from audit.entity_layer_run"
             " where layer = 'silver' and entity = %s and status = 'succeeded' order by ended_at", (entity,))]


def test_delete_records_close_keys_and_later_records_open_them_again(warehouse: str, tmp_path: Path) -> None:
    url = fresh_database(warehouse, "deletes")
    home, metadata = tmp_path / "home", declarations_with(tmp_path, "deletes_metadata")
    (home / "dagster").mkdir(parents=True)
    write_day(next(simulate(days=1, seed=2)), home / "sources" / "TST01")  # gold needs TST01's tables
    load_catalog(metadata)  # the test's declarations are valid

    deliver(home, 1, [account(1, "c", "Ann", "10.00", "gold"), account(2, "c", "Bob", "5", "silver"),
                      account(3, "c", "Cy", "7", "bronze")],
            [{"member_id": "m1", "email": "a@x", "is_deleted": False}, {"member_id": "m2", "email": "b@x"}])
    # Day 2: account 2 deleted by a CDC record carrying the key only (its required attributes absent), a
    # delete of account 9, which silver never had (nothing to close), account 3 updated; member m1
    # soft-deleted (the same values, flagged), m2 changed.
    deliver(home, 2, [{"op": "d", "account_id": 2}, {"op": "d", "account_id": 9},
                      account(3, "u", "Cy", "8", "bronze")],
            [{"member_id": "m1", "email": "a@x", "is_deleted": True}, {"member_id": "m2", "email": "b2@x"}])
    # Day 3: account 2 created again; account 1 deleted by a record with its current values; account 3
    # deleted by a record with other values (no version of them, and its SCD1 tier stays); m1 back.
    deliver(home, 3, [account(2, "c", "Bob", "6", "silver"), account(1, "d", "Ann", "10.00", "gold"),
                      account(3, "d", "Cy X", "99", "platinum")],
            [{"member_id": "m1", "email": "a2@x", "is_deleted": False}])

    for _ in (1, 2, 3):
        code, output = cli(url, home, metadata, "run")
        assert code == 0, output
    batch = dict(enumerate((r["batch_id"] for r in rows(
        url, "select batch_id from audit.system_run where system_id = 'DEL01' order by batch_timestamp")), 1))

    # The delete records reached bronze, flagged; the key-only one with nulls for its other attributes.
    assert rows(url, "select account_id, name, balance, tier, _deleted from bronze.del01_account"
                     " where _batch_id = %s order by _record_no", (batch[2],)) == [
        {"account_id": 2, "name": None, "balance": None, "tier": None, "_deleted": True},
        {"account_id": 9, "name": None, "balance": None, "tier": None, "_deleted": True},
        {"account_id": 3, "name": "Cy", "balance": D("8"), "tier": "bronze", "_deleted": False},
    ]
    # The gate let the key-only deletes through (name and balance are required attributes), without a warning.
    assert rows(url, "select status, message from audit.entity_layer_run where layer = 'quality'"
                     " and entity = 'account' and batch_id = %s", (batch[2],)) == [
        {"status": "succeeded", "message": None}]
    # `op`, which no attribute models, is the marker's field: landing does not report it as a new source field.
    assert rows(url, "select distinct message from audit.entity_layer_run where layer = 'landing'"
                     " and system_id = 'DEL01'") == [{"message": None}]

    history = silver(url, "del01_account", "account_id", "name, balance, tier")
    expected_accounts = [
        # closed by day 3's delete at day 3's timestamp; the delete's values are no version
        {"account_id": 1, "name": "Ann", "balance": D("10.00"), "tier": "gold", "valid_from": DAY[1],
         "valid_to": DAY[3], "current": False, "opened": batch[1], "closed": batch[3]},
        {"account_id": 2, "name": "Bob", "balance": D("5"), "tier": "silver", "valid_from": DAY[1],
         "valid_to": DAY[2], "current": False, "opened": batch[1], "closed": batch[2]},
        {"account_id": 2, "name": "Bob", "balance": D("6"), "tier": "silver", "valid_from": DAY[3],
         "valid_to": None, "current": True, "opened": batch[3], "closed": None},
        {"account_id": 3, "name": "Cy", "balance": D("7"), "tier": "bronze", "valid_from": DAY[1],
         "valid_to": DAY[2], "current": False, "opened": batch[1], "closed": batch[2]},
        {"account_id": 3, "name": "Cy", "balance": D("8"), "tier": "bronze", "valid_from": DAY[2],
         "valid_to": DAY[3], "current": False, "opened": batch[2], "closed": batch[3]},
    ]
    assert history == expected_accounts
    members = silver(url, "del01_member", "member_id", "email, is_deleted")
    assert members == [
        {"member_id": "m1", "email": "a@x", "is_deleted": False, "valid_from": DAY[1], "valid_to": DAY[2],
         "current": False, "opened": batch[1], "closed": batch[2]},
        {"member_id": "m1", "email": "a2@x", "is_deleted": False, "valid_from": DAY[3], "valid_to": None,
         "current": True, "opened": batch[3], "closed": None},
        {"member_id": "m2", "email": "b@x", "is_deleted": None, "valid_from": DAY[1], "valid_to": DAY[2],
         "current": False, "opened": batch[1], "closed": batch[2]},
        {"member_id": "m2", "email": "b2@x", "is_deleted": None, "valid_from": DAY[2], "valid_to": None,
         "current": True, "opened": batch[2], "closed": None},
    ]
    # (batch, records in, inserted, updated, deleted): a delete of a key silver does not hold counts nothing.
    assert counts(url, "account") == [(batch[1], 3, 3, 0, 0), (batch[2], 3, 1, 1, 1), (batch[3], 3, 1, 0, 2)]
    assert counts(url, "member") == [(batch[1], 2, 2, 0, 0), (batch[2], 2, 1, 1, 1), (batch[3], 1, 1, 0, 0)]

    # A replay from the batch of the first deletes gives the same silver.
    code, output = cli(url, home, metadata, "replay", "--entity", "account", "--entity", "member",
                       "--from-batch", str(batch[2]))
    assert code == 0, output
    assert silver(url, "del01_account", "account_id", "name, balance, tier") == expected_accounts
    assert silver(url, "del01_member", "member_id", "email, is_deleted") == members
    assert counts(url, "account")[-2:] == [(batch[2], 3, 1, 1, 1), (batch[3], 3, 1, 0, 2)]

    # Day 3 landed again with account 1's record an update of the same values instead of a delete: its content
    # changed, so silver re-applies it, and account 1 stays current.
    deliver(home, 3, [account(2, "c", "Bob", "6", "silver"), account(1, "u", "Ann", "10.00", "gold"),
                      account(3, "d", "Cy X", "99", "platinum")],
            [{"member_id": "m1", "email": "a2@x", "is_deleted": False}])
    code, output = cli(url, home, metadata, "run", "--system", "DEL01", "--force")
    assert code == 0, output
    reopened = [dict(r) for r in expected_accounts]
    reopened[0].update(valid_to=None, current=True, closed=None)
    assert silver(url, "del01_account", "account_id", "name, balance, tier") == reopened
    assert counts(url, "account")[-1] == (batch[3], 3, 1, 0, 1)
    assert rows(url, "select message from audit.entity_layer_run where layer = 'silver' and entity = 'account'"
                     " and status = 'succeeded' order by ended_at desc limit 1") == [
        {"message": f"batch {batch[3]} was landed again with other values: silver re-applied it and every"
                    " later batch, in order"}]
    # The member's day 3 is as it was: the same content changes nothing.
    assert silver(url, "del01_member", "member_id", "email, is_deleted") == members
