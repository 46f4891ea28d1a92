"""End to end, on a real embedded PostgreSQL with real dlt, dbt and Dagster: the test system's
day 1 and day 2 go through landing -> quality -> bronze -> silver -> gold, and every layer is
asserted by value. Re-runs (nothing new, and forced re-runs of the same batch) must add nothing.

Silver is compared, row for row, with a small independent SCD2 model of the source written here.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from scd2_oracle import expected_silver

from ingestion.test_system.generator import Day, simulate, write_day
from metadata.catalog import Catalog, load_catalog

pytestmark = pytest.mark.e2e

LANDING = ["tst01_owners", "tst01_vehicles"]
ENTITIES = ["tst01_owner", "tst01_vehicle", "tst01_vehicle_option"]
UTC = dt.UTC


@dataclass
class Scenario:
    url: str
    catalog: Catalog
    days: list[Day]
    both_changed: str  # a vehicle whose SCD1 and SCD2 attributes both change on day 2
    batch: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: dict[str, Any] = field(default_factory=dict)


def _query(url: str, text: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(text, params).fetchall()


def _snapshot(url: str) -> dict[str, Any]:
    """Row counts of every layer, silver's full content, and gold's."""
    snap: dict[str, Any] = {}
    for table in LANDING:
        snap[f"landing.{table}"] = _query(url, f"select count(*) as n from landing.{table}")[0]["n"]
    for table in ENTITIES:
        snap[f"bronze.{table}"] = _query(url, f"select count(*) as n from bronze.{table}")[0]["n"]
        rows = _query(url, f"select * from silver.{table}")
        snap[f"silver.{table}"] = sorted(
            (tuple(sorted((k, v) for k, v in r.items() if k != "_modified_by_run_id")) for r in rows), key=repr
        )
    snap["gold.owner_vehicles"] = _query(url, "select * from gold.owner_vehicles order by owner_id")
    return snap


@pytest.fixture(scope="module")
def scenario(warehouse: str, platform_home: Path) -> Scenario:
    from orchestration.execute import run_job

    days = list(simulate(days=2, seed=7))
    # Make one vehicle change an SCD2 attribute (color) and an SCD1 attribute (mileage) on day 2.
    both = sorted(days[1].changes.vehicles.scd2_updated)[0]
    days[1].vehicles = dict(days[1].vehicles)
    record = copy.deepcopy(days[1].vehicles[both])
    record["mileage_km"] += 4321
    days[1].vehicles[both] = record

    source = platform_home / "sources" / "TST01"
    s = Scenario(warehouse, load_catalog(), days, both)
    steps = [("day1", 0, False), ("day1_again", None, False), ("day1_forced", None, True),
             ("day2", 1, False), ("day2_forced", None, True)]
    for name, day_index, force in steps:
        if day_index is not None:
            write_day(days[day_index], source)
        outcome = run_job(system_id="TST01", force=force, echo=lambda _: None)
        s.outcomes[name] = outcome
        s.batch[name] = outcome.system_runs[0].batch_id if outcome.system_runs else None
        s.snapshots[name] = _snapshot(warehouse)
        s.snapshots[name]["audit_check"] = _audit_versus_rows(warehouse, s.batch[name]) if s.batch[name] else None
    return s


def test_every_run_succeeds_and_each_run_is_one_batch(scenario: Scenario) -> None:
    assert all(o.success for o in scenario.outcomes.values()), {k: o.failed_steps for k, o in scenario.outcomes.items()}
    assert scenario.batch["day1"] is not None and scenario.batch["day2"] is not None
    assert scenario.batch["day1_again"] is None  # nothing new: no batch at all
    assert scenario.batch["day1_forced"] == scenario.batch["day1"]  # a forced re-run is the same batch
    assert scenario.batch["day2_forced"] == scenario.batch["day2"]
    assert scenario.batch["day2"] > scenario.batch["day1"]


@pytest.mark.parametrize("before, after", [("day1", "day1_again"), ("day1", "day1_forced"), ("day2", "day2_forced")])
def test_running_the_same_batch_again_adds_no_row_to_any_layer(scenario: Scenario, before: str, after: str) -> None:
    first, again = scenario.snapshots[before], scenario.snapshots[after]
    for key in first:
        if key != "audit_check":
            assert again[key] == first[key], key


def test_landing_keeps_records_as_is_with_batch_columns(scenario: Scenario) -> None:
    day2 = scenario.days[1]
    rows = _query(scenario.url, "select * from landing.tst01_vehicles where _batch_id = %s order by _record_no",
                  (scenario.batch["day2"],))
    assert [r["payload"] for r in rows] == [day2.vehicles[k] for k in sorted(day2.vehicles)]
    assert {r["_batch_timestamp"] for r in rows} == {dt.datetime(2026, 1, 2, tzinfo=UTC)}
    assert {r["_run_id"] for r in rows} == {scenario.outcomes["day2_forced"].dagster_run_id}
    assert scenario.snapshots["day2"]["landing.tst01_vehicles"] == len(scenario.days[0].vehicles) + len(day2.vehicles)


def test_bronze_flattens_nested_objects(scenario: Scenario) -> None:
    day1 = scenario.days[0]
    rows = _query(scenario.url, "select * from bronze.tst01_vehicle where _batch_id = %s", (scenario.batch["day1"],))
    assert len(rows) == len(day1.vehicles)
    for row in rows:
        source = day1.vehicles[row["vehicle_id"]]
        assert row["owner_owner_id"] == source["owner"]["owner_id"]
        assert row["owner_since"] == dt.date.fromisoformat(source["owner"]["since"])
        assert (row["color"], row["mileage_km"], row["year"]) == (source["color"], source["mileage_km"], source["year"])


def test_child_entity_from_the_nested_list_has_the_right_rows_and_keys(scenario: Scenario) -> None:
    for name, day in (("day1", scenario.days[0]), ("day2", scenario.days[1])):
        rows = _query(scenario.url, "select vehicle_id, code, name, price from bronze.tst01_vehicle_option"
                      " where _batch_id = %s", (scenario.batch[name],))
        expected = {
            (v["vehicle_id"], o["code"], o["name"], o["price"]) for v in day.vehicles.values() for o in v["options"]
        }
        assert sorted((r["vehicle_id"], r["code"], r["name"], r["price"]) for r in rows) == sorted(expected)
    current = _query(scenario.url, "select vehicle_id, code from silver.tst01_vehicle_option where valid_to is null")
    day2 = scenario.days[1]
    assert sorted((r["vehicle_id"], r["code"]) for r in current) == sorted(
        (v["vehicle_id"], o["code"]) for v in day2.vehicles.values() for o in v["options"])


# --- silver, against an independent SCD2 model of the source -------------------------------------

@pytest.mark.parametrize("entity", ["owner", "vehicle", "vehicle_option"])
def test_silver_equals_the_scd2_history_of_the_source(scenario: Scenario, entity: str) -> None:
    catalog = scenario.catalog
    names = [c.name for c in catalog.columns[entity]] + [
        "valid_from", "valid_to", "_opened_by_batch_id", "_closed_by_batch_id"]
    actual = _query(scenario.url, f"select {', '.join(names)} from silver.tst01_{entity}")
    expected = expected_silver(catalog, entity, scenario.days, [scenario.batch["day1"], scenario.batch["day2"]])
    as_tuples = lambda rows: sorted((tuple(r[n] for n in names) for r in rows), key=repr)  # noqa: E731
    assert as_tuples(actual) == as_tuples(expected)


def test_day2_versions_by_kind_of_change(scenario: Scenario) -> None:
    """The same history, spelled out for the vehicles that changed on day 2."""
    changes = scenario.days[1].changes.vehicles
    day2_ts = dt.datetime(2026, 1, 2, tzinfo=UTC)
    versions: dict[str, list[dict[str, Any]]] = {}
    for row in _query(scenario.url, "select * from silver.tst01_vehicle order by valid_from"):
        versions.setdefault(row["vehicle_id"], []).append(row)

    for key in changes.scd2_updated:  # one closed version (closed by day 2's timestamp) and one open
        old, new = versions[key]
        assert old["valid_to"] == day2_ts and old["_closed_by_batch_id"] == scenario.batch["day2"]
        assert new["valid_from"] == day2_ts and new["valid_to"] is None
    for key in changes.scd1_updated:  # overwritten in place: still one open version, new mileage
        (only,) = versions[key]
        assert only["valid_to"] is None and only["mileage_km"] == scenario.days[1].vehicles[key]["mileage_km"]
    for key in changes.deleted:  # closed at day 2, nothing open
        (only,) = versions[key]
        assert only["valid_to"] == day2_ts
    for key in changes.inserted:
        (only,) = versions[key]
        assert only["valid_from"] == day2_ts and only["valid_to"] is None
    # SCD1 attributes changed on day 2 show the new value in every version of the key.
    both = versions[scenario.both_changed]
    assert len(both) == 2
    assert {v["mileage_km"] for v in both} == {scenario.days[1].vehicles[scenario.both_changed]["mileage_km"]}
    scd2_of = lambda v: (v["color"], v["owner_owner_id"], v["owner_since"])  # noqa: E731
    assert scd2_of(both[0]) != scd2_of(both[1])


def test_gold_counts_vehicles_per_current_owner(scenario: Scenario) -> None:
    day2 = scenario.days[1]
    gold = {r["owner_id"]: r for r in scenario.snapshots["day2"]["gold.owner_vehicles"]}
    assert set(gold) == set(day2.owners)
    for owner_id, row in gold.items():
        owned = [v for v in day2.vehicles.values() if v["owner"]["owner_id"] == owner_id]
        assert row["vehicles_owned"] == len(owned)
        changed_to_owner = [v for v in owned if v["vehicle_id"] in scenario.days[0].vehicles
                            and scenario.days[0].vehicles[v["vehicle_id"]]["owner"]["owner_id"] != owner_id]
        assert row["vehicles_acquired_last_30_days"] == len(changed_to_owner)
        assert row["as_of"] == dt.datetime(2026, 1, 2, tzinfo=UTC)
    assert sum(r["vehicles_acquired_last_30_days"] for r in gold.values()) > 0


# --- audit ----------------------------------------------------------------------------------------

def _audit_versus_rows(url: str, batch_id: int) -> list[tuple[str, str, dict[str, int], dict[str, int]]]:
    """For each entity row the audit wrote for the batch: (layer, entity, audit counts, measured counts),
    measured right after the run, before another batch can touch the rows."""
    pairs = []
    audit_rows = _query(url, "select * from audit.entity_layer_run where batch_id = %s and status = 'succeeded'"
                        " and layer in ('landing', 'bronze', 'silver') and entity_layer_run_id in ("
                        " select max(entity_layer_run_id) from audit.entity_layer_run where batch_id = %s"
                        " group by layer, entity)", (batch_id, batch_id))
    for row in audit_rows:
        counted = {k: row[k] for k in ("records_in", "inserted", "updated", "deleted")}
        if row["layer"] == "landing":
            table = f"landing.tst01_{row['entity']}"
            n = _query(url, f"select count(*) as n from {table} where _batch_id = %s", (batch_id,))[0]["n"]
            measured = {"records_in": n, "inserted": n, "updated": 0, "deleted": 0}
        elif row["layer"] == "bronze":
            table = f"tst01_{row['entity']}"
            n = _query(url, f"select count(*) as n from bronze.{table} where _batch_id = %s", (batch_id,))[0]["n"]
            measured = {"records_in": counted["records_in"], "inserted": n, "updated": 0, "deleted": 0}
        else:
            table = f"silver.tst01_{row['entity']}"
            # Rows the batch modified without opening them were either updated or closed as deleted.
            m = _query(url, f"""
                select count(*) filter (where _opened_by_batch_id = %(b)s) as inserted,
                       count(*) filter (
                           where _modified_by_batch_id = %(b)s and _opened_by_batch_id <> %(b)s
                       ) as modified,
                       count(*) filter (where _closed_by_batch_id = %(b)s and not exists (
                           select 1 from {table} n where n._opened_by_batch_id = %(b)s and {_same_key(row['entity'])}))
                           as deleted
                from {table} t""", {"b": batch_id})[0]
            m["updated"] = m.pop("modified") - m["deleted"]
            measured = {"records_in": counted["records_in"], **m}
        pairs.append((row["layer"], row["entity"], counted, measured))
    return pairs


def _same_key(entity: str) -> str:
    keys = {"owner": ["owner_id"], "vehicle": ["vehicle_id"], "vehicle_option": ["vehicle_id", "code"]}[entity]
    return " and ".join(f"n.{k} = t.{k}" for k in keys)


@pytest.mark.parametrize("step", ["day1", "day2"])
def test_audit_counts_equal_the_rows_actually_written(scenario: Scenario, step: str) -> None:
    pairs = scenario.snapshots[step]["audit_check"]
    assert {(layer, entity) for layer, entity, _, _ in pairs} == {
        ("landing", "owners"), ("landing", "vehicles"),
        *((layer, e) for layer in ("bronze", "silver") for e in ("owner", "vehicle", "vehicle_option"))}
    for layer, entity, counted, measured in pairs:
        assert counted == measured, (layer, entity)
    silver_vehicle = next(c for layer, e, c, _ in pairs if (layer, e) == ("silver", "vehicle"))
    changes = scenario.days[1].changes.vehicles
    if step == "day2":
        assert silver_vehicle["deleted"] == len(changes.deleted)
        assert silver_vehicle["inserted"] == len(changes.inserted) + len(changes.scd2_updated)


def test_audit_runs_and_layers_tell_what_happened(scenario: Scenario) -> None:
    runs = _query(scenario.url, "select * from audit.system_run order by system_run_id")
    assert [(r["batch_id"], r["source_ref"], r["status"]) for r in runs] == [
        (scenario.batch["day1"], "2026-01-01", "succeeded"), (scenario.batch["day1"], "2026-01-01", "succeeded"),
        (scenario.batch["day2"], "2026-01-02", "succeeded"), (scenario.batch["day2"], "2026-01-02", "succeeded")]
    assert all(r["entities_succeeded"] == 3 and r["entities_failed"] == 0 for r in runs)
    layers = _query(scenario.url, "select system_run_id, layer, status from audit.system_layer_run order by 1, 2")
    assert {(r["layer"], r["status"]) for r in layers} == {
        (layer, "succeeded") for layer in ("landing", "quality", "bronze", "silver", "gold")}
    assert len(layers) == 5 * len(runs)
    cursor = _query(scenario.url, "select value, batch_id from audit.cursor where system_id = 'TST01'")
    assert cursor == [{"value": "2026-01-02", "batch_id": scenario.batch["day2"]}]


def test_dbt_build_passes_on_the_loaded_warehouse(scenario: Scenario) -> None:
    """What CI's `dbt build` runs: models, snapshots, data tests and unit tests."""
    from cli.main import main

    assert main(["dbt", "build"]) == 0


def test_bronze_key_is_tested_on_the_batches_silver_has_not_applied(scenario: Scenario) -> None:
    """Bronze's not-null key test reads the batches its silver has not applied yet (what a build just added), not
    all of bronze's history every run: a null key in an applied batch is not read again; one in a batch silver
    has not applied (here: backed out, as a replay does) fails the test."""
    from cli.main import main

    null_key_row = ("insert into bronze.tst01_vehicle (_batch_id, _batch_timestamp, _run_id, _loaded_at, _record_no,"
                    " vehicle_id) values (%s, now(), 'test', now(), 1, null)")
    with psycopg.connect(scenario.url, autocommit=True) as conn:
        conn.execute(null_key_row, (scenario.batch["day1"],))
        try:
            assert main(["dbt", "test", "--select", "bronze__tst01_vehicle"]) == 0
            backed_out = [row[0] for row in conn.execute(
                "update audit.entity_layer_run set status = 'rolled_back'"
                " where layer = 'silver' and status = 'succeeded' and system_id = 'TST01' and entity = 'vehicle'"
                " and batch_id = %s returning entity_layer_run_id",
                (scenario.batch["day2"],))]
            assert backed_out
            conn.execute(null_key_row, (scenario.batch["day2"],))
            try:
                assert main(["dbt", "test", "--select", "bronze__tst01_vehicle"]) == 1
            finally:
                conn.execute("update audit.entity_layer_run set status = 'succeeded'"
                             " where entity_layer_run_id = any(%s)", (backed_out,))
        finally:
            conn.execute("delete from bronze.tst01_vehicle where _run_id = 'test' and vehicle_id is null")


def test_materializations_carry_row_counts_and_the_batch_id(scenario: Scenario) -> None:
    import dagster as dg

    instance = dg.DagsterInstance.get()
    landing = instance.get_latest_materialization_event(dg.AssetKey(["landing", "tst01_vehicles"]))
    metadata = landing.asset_materialization.metadata
    assert metadata["batch_id"].value == scenario.batch["day2"]
    assert metadata["rows_in_batch"].value == len(scenario.days[1].vehicles)
    silver = instance.get_latest_materialization_event(dg.AssetKey(["silver", "tst01_vehicle"]))
    metadata = silver.asset_materialization.metadata
    assert metadata["batch_ids"].value == f"[{scenario.batch['day2']}]"
    assert metadata["current_versions"].value == len(scenario.days[1].vehicles)
    bronze = instance.get_latest_materialization_event(dg.AssetKey(["bronze", "tst01_vehicle"]))
    assert bronze.asset_materialization.metadata["rows_in_batch"].value == len(scenario.days[1].vehicles)


def test_status_lists_recent_runs_from_the_audit_tables(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["status", "--limit", "2"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("TST01")]
    assert len(lines) == 2
    assert lines[0].startswith(f"TST01 batch {scenario.batch['day2']} (2026-01-02) succeeded")
    assert "landing=succeeded quality=succeeded bronze=succeeded silver=succeeded gold=succeeded" in lines[0]
