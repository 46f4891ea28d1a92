"""End to end, the quality gate with Great Expectations on a real PostgreSQL: every kind of bad batch
fails the right entity with a message naming the attribute and what was observed, the other entities
pass, and the audit rows say exactly that; then the same through the real Dagster job (`dataplatform
run` in a subprocess): the failing entity's quality row is failed, the others succeed.

Isolation: the session's embedded server is shared with test_pipeline.py, which asserts every audit
row, so this module works in databases of its own on that server (`quality_gate`, `quality_gate_cli`).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from audit import batches as audit
from ingestion.test_system.generator import Day, simulate, write_day
from metadata.catalog import DEFAULT_FOLDER, Catalog, load_catalog
from quality import gate as quality_gate
from quality import plan as quality_plan
from quality.gate import gate_batch, previous_batch
from quality.gx import GxValidator
from quality.report import EntityVerdict
from warehouse.migrations import migrate

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.UTC
ENTITIES = ["owner", "vehicle", "vehicle_option"]
RUN_ID = "quality-gate-test"


def database(url: str, name: str) -> str:
    """A fresh, migrated database `name` on the server of `url`; its URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    parts = urlsplit(url)
    db_url = urlunsplit(parts._replace(path=f"/{name}"))
    migrate(db_url)
    return db_url


def rows(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def gate_db(warehouse: str) -> str:
    url = database(warehouse, "quality_gate")
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("tst01_owners", "tst01_vehicles"):  # the columns the landing writer gives them
            conn.execute(
                f"create table landing.{table} (_batch_id bigint not null, _batch_timestamp timestamptz not null,"
                " _run_id text not null, _loaded_at timestamptz not null, _record_no bigint not null, payload jsonb)"
            )
    return url


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEFAULT_FOLDER)


@pytest.fixture(scope="module")
def validator(gate_db: str) -> Iterator[GxValidator]:
    with GxValidator(gate_db) as v:  # one GX context for the module, as for one check execution
        yield v


@dataclass
class Source:
    owners: list[dict[str, Any]]
    vehicles: list[dict[str, Any]]


@pytest.fixture
def source() -> Source:
    """A fresh copy of the test system's first day (20 owners, 50 vehicles with their options)."""
    day = next(simulate(days=1, seed=11))
    # Through JSON: the generator shares option records between vehicles; a test changes one item only.
    return Source(json.loads(json.dumps(list(day.owners.values()))), json.loads(json.dumps(list(day.vehicles.values()))))


class Gate:
    """Lands batches into the gate database (one later batch timestamp each) and runs the gate on them."""

    def __init__(self, url: str, catalog: Catalog, validator: GxValidator) -> None:
        self.url, self.catalog, self.validator = url, catalog, validator
        self.count = 0

    def land(self, source: Source, *, dagster_run_id: str = RUN_ID) -> audit.SystemRun:
        self.count += 1
        with psycopg.connect(self.url, autocommit=True) as conn:
            latest = conn.execute("select max(batch_timestamp) from audit.system_run").fetchone()[0]
            ts = (latest or dt.datetime(2026, 1, 1, tzinfo=UTC)) + dt.timedelta(days=1)
            run = audit.open_batch(conn, system_id="TST01", source_ref=ts.date().isoformat(),
                                         batch_timestamp=ts, dagster_run_id=dagster_run_id)
            for table, records in (("tst01_owners", source.owners), ("tst01_vehicles", source.vehicles)):
                with conn.cursor() as cur:
                    cur.executemany(
                        f"insert into landing.{table} values (%s, %s, %s, now(), %s, %s)",
                        [(run.batch_id, ts, RUN_ID, no, json.dumps(r)) for no, r in enumerate(records, start=1)],
                    )
        return run

    def check(self, source: Source, *, catalog: Catalog | None = None) -> tuple[audit.SystemRun, dict[str, EntityVerdict]]:
        run = self.land(source)
        catalog = catalog or self.catalog
        with psycopg.connect(self.url, autocommit=True) as conn:
            verdicts = gate_batch(conn, catalog, run, catalog.entities_of("TST01"), self.validator, dagster_run_id=RUN_ID)
        return run, {v.entity: v for v in verdicts}

    def audit_rows(self, run: audit.SystemRun) -> dict[str, tuple[str, int, str | None]]:
        found = rows(self.url, "select entity, status, records_in, message from audit.entity_layer_run"
                               " where batch_id = %s and layer = 'quality' order by entity_layer_run_id", (run.batch_id,))
        return {r["entity"]: (r["status"], r["records_in"], r["message"]) for r in found}

    def layer_row(self, run: audit.SystemRun) -> dict[str, Any]:
        return rows(self.url, "select status, entities_succeeded, entities_failed, message from audit.system_layer_run"
                              " where system_run_id = %s and layer = 'quality'", (run.system_run_id,))[0]


@pytest.fixture
def gate(gate_db: str, catalog: Catalog, validator: GxValidator) -> Gate:
    return Gate(gate_db, catalog, validator)


def items(source: Source) -> int:
    return sum(len(v["options"]) for v in source.vehicles)


def failed_keys(verdict: EntityVerdict) -> list[str]:
    return [o.key for o in verdict.failed]


# ------------------------------------------------------------------------------------------ the gate


def test_a_good_batch_passes_and_its_audit_rows_say_so(gate: Gate, source: Source) -> None:
    run, verdicts = gate.check(source)
    assert {e: v.passed for e, v in verdicts.items()} == dict.fromkeys(ENTITIES, True)
    assert gate.audit_rows(run) == {"owner": ("succeeded", 20, None), "vehicle": ("succeeded", 50, None),
                                    "vehicle_option": ("succeeded", items(source), None)}
    assert gate.layer_row(run) == {"status": "succeeded", "entities_succeeded": 3, "entities_failed": 0, "message": None}
    owner = verdicts["owner"]
    assert all(o.success for o in owner.outcomes) and len(owner.outcomes) + len(owner.notes) == 10
    assert {o.key: o.observed for o in owner.outcomes}["attribute.email"] == {"rows": 20, "unexpected": 0, "unexpected_types": {}}
    assert {o.key: o.summary for o in owner.outcomes}["row_count"] == "row count: 20 records"


def test_a_duplicate_key_fails_its_entity_and_the_child_alone(gate: Gate, source: Source) -> None:
    twin = next(v for v in source.vehicles if v["options"])
    source.vehicles.append(copy.deepcopy(twin))
    run, verdicts = gate.check(source)
    assert failed_keys(verdicts["vehicle"]) == ["key_unique"]
    assert failed_keys(verdicts["vehicle_option"]) == ["key_unique"]
    n = len(twin["options"])
    assert gate.audit_rows(run) == {
        "owner": ("succeeded", 20, None),
        "vehicle": ("failed", 51, f"quality gate failed for vehicle (batch {run.batch_id}), 1 expectation(s): "
                                  f"primary key vehicle_id: 2 of 51 records share a key with another, duplicated keys: "
                                  f"{twin['vehicle_id']} (landing records #{source.vehicles.index(twin) + 1}, #51)"),
        "vehicle_option": ("failed", items(source), verdicts["vehicle_option"].message),
    }
    assert (f"primary key (vehicle_id, code): {2 * n} of {items(source)} items share a key with another, duplicated keys: "
            f"('{twin['vehicle_id']}', '") in verdicts["vehicle_option"].message
    assert gate.layer_row(run) == {"status": "failed", "entities_succeeded": 1, "entities_failed": 2,
                                   "message": "failed for: vehicle, vehicle_option"}


def test_a_record_missing_its_key_fails_naming_the_record(gate: Gate, source: Source) -> None:
    del source.owners[4]["owner_id"]
    run, verdicts = gate.check(source)
    assert failed_keys(verdicts["owner"]) == ["key_present.owner_id", "attribute.owner_id"]
    assert gate.audit_rows(run)["owner"] == (
        "failed", 20,
        f"quality gate failed for owner (batch {run.batch_id}), 2 expectation(s): "
        "primary key owner_id: 1 of 20 records without a value (landing record #5); "
        "attribute owner_id: 1 of 20 records are missing it or have the wrong type: found missing, expected integer"
        " (landing record #5)")
    assert verdicts["vehicle"].passed and verdicts["vehicle_option"].passed


def test_a_declared_attribute_that_disappears_fails_naming_it(gate: Gate, source: Source) -> None:
    for vehicle in source.vehicles:
        del vehicle["color"]
    del source.owners[0]["address"]["city"]
    run, verdicts = gate.check(source)
    assert verdicts["vehicle"].message == (
        f"quality gate failed for vehicle (batch {run.batch_id}), 1 expectation(s): attribute color: 50 of 50 records"
        " are missing it or have the wrong type: found missing, expected string (landing records #1, #2, #3, #4, #5, ...)")
    assert verdicts["owner"].message == (
        f"quality gate failed for owner (batch {run.batch_id}), 1 expectation(s): attribute address.city: 1 of 20"
        " records are missing it or have the wrong type: found missing, expected string (landing record #1)")
    assert verdicts["vehicle_option"].passed
    observed = {o.key: o.observed for o in verdicts["vehicle"].outcomes}["attribute.color"]
    assert observed == {"rows": 50, "unexpected": 50, "unexpected_types": {"missing": 20}}  # GX counts a sample of 20
    assert [status for status, _, _ in gate.audit_rows(run).values()] == ["failed", "failed", "succeeded"]


@pytest.mark.parametrize("modern", [True, False], ids=["pg_input_is_valid", "iso-patterns"])
def test_an_attribute_of_the_wrong_type_fails_naming_it(gate: Gate, source: Source, modern: bool,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quality_gate, "has_pg_input_is_valid", lambda conn: modern)
    source.vehicles[1]["year"] = str(source.vehicles[1]["year"])
    source.vehicles[2]["mileage_km"] = 1234.5
    source.vehicles[3]["owner"]["since"] = "31.12.2020"
    source.vehicles[4]["owner"]["since"] = "2021-02-30"
    source.owners[2]["name"] = None
    with_options = [i for i, v in enumerate(source.vehicles) if v["options"]]
    source.vehicles[with_options[0]]["options"][0]["price"] = "12.50"
    run, verdicts = gate.check(source)
    # Before PostgreSQL 16 a date is checked by its ISO pattern only, so 2021-02-30 passes the gate there.
    bad_dates = "2 of 50 records" if modern else "1 of 50 records"
    where = "landing records #4, #5" if modern else "landing record #4"
    assert verdicts["vehicle"].message == (
        f"quality gate failed for vehicle (batch {run.batch_id}), 3 expectation(s): "
        "attribute year: 1 of 50 records are missing it or have the wrong type: found string, expected integer"
        " (landing record #2); "
        "attribute mileage_km: 1 of 50 records are missing it or have the wrong type: found number, expected integer"
        " (landing record #3); "
        f"attribute owner.since: {bad_dates} are missing it or have the wrong type: found string, expected date"
        f" ({where})")
    assert verdicts["owner"].message.endswith(
        "attribute name: 1 of 20 records are missing it or have the wrong type: found null, expected string"
        " (landing record #3)")
    assert verdicts["vehicle_option"].message.endswith(
        f"attribute price: 1 of {items(source)} items are missing it or have the wrong type: found string,"
        f" expected integer or number (landing record #{with_options[0] + 1} item 1)")
    assert {e: s for e, (s, _, _) in gate.audit_rows(run).items()} == dict.fromkeys(ENTITIES, "failed")


def test_a_child_list_that_is_missing_or_not_a_list_fails_the_child_alone(gate: Gate, source: Source) -> None:
    del source.vehicles[0]["options"]
    source.vehicles[6]["options"] = {"code": "NAV"}
    run, verdicts = gate.check(source)
    assert verdicts["vehicle_option"].message == (
        f"quality gate failed for vehicle_option (batch {run.batch_id}), 1 expectation(s): list options: 2 of 50"
        " records have no list there: found missing, object, expected array (landing records #1, #7)")
    assert verdicts["owner"].passed and verdicts["vehicle"].passed


def test_row_count_outside_the_declared_bounds(gate: Gate, source: Source, tmp_path: Path) -> None:
    folder = tmp_path / "declarations"
    folder.mkdir()
    for name in ("systems.json", "actions.json"):
        (folder / name).write_text((DEFAULT_FOLDER / name).read_text())
    entities = json.loads((DEFAULT_FOLDER / "entities.json").read_text())
    entities["entities"][0]["quality"] = {"row_count": {"min": 1, "max": 10}}
    (folder / "entities.json").write_text(json.dumps(entities))
    run, verdicts = gate.check(source, catalog=load_catalog(folder))
    assert verdicts["owner"].message == (
        f"quality gate failed for owner (batch {run.batch_id}), 1 expectation(s): "
        "row count: 20 records; expected between 1 and 10")
    assert {o.key: o.observed for o in verdicts["owner"].outcomes}["row_count"] == {"row_count": 20, "min": 1, "max": 10}

    run, verdicts = gate.check(Source([], source.vehicles))  # the bundled bounds: at least one owner
    assert verdicts["owner"].message.startswith(f"quality gate failed for owner (batch {run.batch_id}), ")
    assert "row count: 0 records; expected between 1 and 10000000" in verdicts["owner"].message
    assert verdicts["vehicle"].passed and verdicts["vehicle_option"].passed


def test_row_count_against_the_previous_successful_batch(gate: Gate, source: Source) -> None:
    good, verdicts = gate.check(source)
    assert verdicts["owner"].passed

    half, verdicts = gate.check(Source(source.owners[:10], source.vehicles))
    assert gate.audit_rows(half)["owner"] == (
        "failed", 10,
        f"quality gate failed for owner (batch {half.batch_id}), 1 expectation(s): row count versus the previous batch:"
        f" 10 records, 50.0% of the 20 of previous batch {good.batch_id}; expected between 80% and 125% (16 to 25)")
    assert {o.key: o.observed for o in verdicts["owner"].outcomes}["row_count_vs_previous_batch"] == {
        "row_count": 10, "previous_batch_id": good.batch_id, "previous_rows": 20, "percent_of_previous": 50.0,
        "min_percent": 80.0, "max_percent": 125.0, "min": 16, "max": 25}

    # The failed batch is no "previous successful batch": 17 is 85% of the good batch's 20.
    later, verdicts = gate.check(Source(source.owners[:17], source.vehicles))
    assert verdicts["owner"].passed
    outcome = {o.key: o for o in verdicts["owner"].outcomes}["row_count_vs_previous_batch"]
    assert outcome.observed["previous_batch_id"] == good.batch_id and outcome.observed["percent_of_previous"] == 85.0
    with psycopg.connect(gate.url) as conn:
        assert previous_batch(conn, later, "owner").batch_id == good.batch_id  # type: ignore[union-attr]
        before = previous_batch(conn, good, "owner")  # only older batches count, never a later one
        assert before is None or before.batch_id < good.batch_id


def test_an_entity_whose_check_cannot_run_fails_alone(gate: Gate, source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    real = quality_plan.rows_query

    def broken(catalog: Catalog, entity: Any, batch_id: int, **kwargs: Any) -> str:
        query = real(catalog, entity, batch_id, **kwargs)
        return query.replace("landing._record_no", "landing.no_such_column", 1) if entity.name == "vehicle" else query

    monkeypatch.setattr(quality_plan, "rows_query", broken)
    run, verdicts = gate.check(source)
    status = gate.audit_rows(run)
    assert status["vehicle"][0] == "failed"
    assert status["vehicle"][2].startswith(f"quality gate could not check vehicle (batch {run.batch_id}): ")
    assert "no_such_column" in status["vehicle"][2]
    assert status["owner"][0] == status["vehicle_option"][0] == "succeeded"


def test_when_gx_cannot_start_every_entity_fails_and_the_step_fails(gate: Gate, source: Source,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import dagster as dg

    from orchestration.assets import quality
    from orchestration.resources import WarehouseResource
    from warehouse.embedded import DATABASE_URL_ENV

    run = gate.land(source, dagster_run_id="gx-cannot-start")  # the check gates the batches of its own run

    def cannot_start(url: str) -> GxValidator:
        raise RuntimeError("no GX today")

    monkeypatch.setattr(quality, "GxValidator", cannot_start)
    monkeypatch.setenv(DATABASE_URL_ENV, gate.url)
    context = types.SimpleNamespace(run=types.SimpleNamespace(run_id="gx-cannot-start"))
    entities = gate.catalog.entities_of("TST01")
    with pytest.raises(dg.Failure, match="the quality gate could not start Great Expectations: no GX today"):
        list(quality._run_checks(context, WarehouseResource(), gate.catalog, gate.catalog.systems["TST01"], entities))
    message = "the quality gate could not start Great Expectations: no GX today"
    assert gate.audit_rows(run) == dict.fromkeys(ENTITIES, ("failed", 0, message))
    assert gate.layer_row(run)["status"] == "failed"


# ------------------------------------------------------------------------------------------ the Dagster job


def _day_with_a_bad_option_price(url: str, home: Path, *, seed: int) -> tuple[Day, str, dict[str, str]]:
    """One day of TST01 whose first vehicle with options prices its first option "expensive" (the gate
    fails vehicle_option only), written as a delivery under `home`; that vehicle's key; and the CLI's environment for it."""
    day = next(simulate(days=1, seed=seed))
    first = next(k for k, v in day.vehicles.items() if v["options"])
    record = copy.deepcopy(day.vehicles[first])
    record["options"][0]["price"] = "expensive"
    day.vehicles = {**day.vehicles, first: record}
    write_day(day, home / "sources" / "TST01")
    env = {**os.environ, "DATAPLATFORM_DATABASE_URL": url, "DATAPLATFORM_HOME": str(home),
           "DAGSTER_HOME": str(home / "dagster"), "PYTHONPATH": str(ROOT)}
    env.pop("DATAPLATFORM_METADATA_DIR", None)
    return day, first, env


def test_through_the_dagster_job_a_failing_entity_fails_alone(warehouse: str, tmp_path: Path) -> None:
    url = database(warehouse, "quality_gate_cli")
    home = tmp_path / "home"
    day, first, env = _day_with_a_bad_option_price(url, home, seed=5)
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--system", "TST01"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # the run says something failed

    quality = rows(url, "select batch_id, entity, status, records_in, message, dagster_run_id from audit.entity_layer_run"
                        " where layer = 'quality' order by entity")
    options = sum(len(v["options"]) for v in day.vehicles.values())
    row_no = list(day.vehicles).index(first) + 1
    assert [(r["entity"], r["status"], r["records_in"]) for r in quality] == [
        ("owner", "succeeded", len(day.owners)), ("vehicle", "succeeded", len(day.vehicles)),
        ("vehicle_option", "failed", options)]
    message = quality[2]["message"]
    assert message == (
        f"quality gate failed for vehicle_option (batch {quality[2]['batch_id']}), 1 expectation(s): attribute price:"
        f" 1 of {options} items are missing it or have the wrong type: found string, expected integer or number"
        f" (landing record #{row_no} item 1)")
    assert f"FAILED quality vehicle_option: {message}" in output

    # Bronze follows the gate: the failed entity's batch stops there, the others go on.
    bronze = {r["entity"]: (r["status"], r["inserted"]) for r in rows(
        url, "select entity, status, inserted from audit.entity_layer_run where layer = 'bronze'")}
    assert bronze == {"owner": ("succeeded", len(day.owners)), "vehicle": ("succeeded", len(day.vehicles)),
                      "vehicle_option": ("skipped", 0)}

    # The Dagster UI's view: each entity's check result, the failed one with its expectations.
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        records = instance.get_records_for_run(quality[0]["dagster_run_id"],
                                               of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        checks = {r.event_log_entry.dagster_event.event_specific_data.check_name:
                  r.event_log_entry.dagster_event.event_specific_data for r in records
                  if r.event_log_entry.dagster_event.event_specific_data.check_name.endswith("_quality_gate")}
    assert {name: c.passed for name, c in checks.items()} == {
        "owner_quality_gate": True, "vehicle_quality_gate": True, "vehicle_option_quality_gate": False}
    failed = checks["vehicle_option_quality_gate"]
    assert failed.severity == dg.AssetCheckSeverity.WARN
    assert failed.description == message
    table = failed.metadata["expectations"].value
    assert "| attribute price present with type integer or number (double precision) | **FAILED** |" in table
    assert failed.metadata["failed_expectations"].value == 1
    results = {r["check"]: r for r in failed.metadata["results"].value}
    assert results["primary key (vehicle_id, code) unique in the batch"]["success"] is True
    assert checks["owner_quality_gate"].description == (
        f"batch {quality[0]['batch_id']}: all 9 expectations passed;"
        " row_count_vs_previous_batch: skipped, no previous successful batch of this entity")


def test_a_failed_entity_fails_the_dagster_run_and_its_check_stays_failed(warehouse: str, tmp_path: Path) -> None:
    """What the operator sees is what happened: the healthy entities are built and materialized, then the
    Dagster run ends FAILURE naming the entity and batch; a following run with nothing new shows the check
    still failed for that batch (silver never applied it)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    url = database(warehouse, "quality_gate_dagster")
    home = tmp_path / "home"
    day, first, env = _day_with_a_bad_option_price(url, home, seed=7)

    def run() -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--system", "TST01"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        return done.returncode, done.stdout + done.stderr

    code, output = run()
    assert code == 1, output
    gate = rows(url, "select batch_id, dagster_run_id from audit.entity_layer_run"
                     " where layer = 'quality' and entity = 'vehicle_option'")[0]
    batch_id, run_id = gate["batch_id"], gate["dagster_run_id"]
    catalog = load_catalog(DEFAULT_FOLDER)
    tables = {e.name: catalog.table(e) for e in catalog.entities_of("TST01")}

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        failures = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records]
        assert [f.step_key for f in failures] == ["dbt_layers"]
        failure = failures[0].event_specific_data.user_failure_data
        assert failure.description.startswith(
            f"1 entity step(s) failed in this run: TST01.vehicle_option batch {batch_id} (quality). The other"
            " entities were built"), failure.description
        assert [(f["entity"], f["batch_id"], f["layer"]) for f in failure.metadata["failures"].value] == [
            ("vehicle_option", batch_id, "quality")]
        # The healthy entities' bronze and silver were built and materialized in the failed run; the stopped
        # entity's were observed (dbt ran them, no row of the batch reached them), never with the batch id.
        materialized = {tuple(r.event_log_entry.dagster_event.asset_key.path) for r in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records}
        observed = {tuple(r.event_log_entry.dagster_event.asset_key.path): r.event_log_entry.dagster_event
                    for r in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION).records}
        for layer in ("bronze", "silver"):
            assert {(layer, tables["owner"]), (layer, tables["vehicle"])} <= materialized, materialized
            assert (layer, tables["vehicle_option"]) not in materialized, materialized
            metadata = observed[(layer, tables["vehicle_option"])].event_specific_data.asset_observation.metadata
            assert "batch_ids" not in metadata and metadata["status"].value.startswith("no rows in this run")
    bronze = {r["entity"]: r["status"] for r in rows(url, "select entity, status from audit.entity_layer_run"
                                                          " where layer = 'bronze'")}
    assert bronze == {"owner": "succeeded", "vehicle": "succeeded", "vehicle_option": "skipped"}

    # Nothing new: the check repeats the standing failure of that batch; the healthy ones have nothing to check.
    code, output = run()
    assert code in (0, 1) and "Traceback" not in output, output  # 1 once item 8 reports the entity behind
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        latest = instance.get_runs(limit=1)[0]
        assert latest.run_id != run_id
        checks = {d.event_specific_data.check_name: d.event_specific_data for d in (
            r.event_log_entry.dagster_event for r in instance.get_records_for_run(
                latest.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records)
            if d.event_specific_data.check_name.endswith("_quality_gate")}
    assert {name: c.passed for name, c in checks.items()} == {
        "owner_quality_gate": True, "vehicle_quality_gate": True, "vehicle_option_quality_gate": False}
    standing = checks["vehicle_option_quality_gate"]
    assert standing.metadata["batch_id"].value == batch_id
    assert standing.description.startswith(
        f"nothing new landed in this run; the gate's failure of batch {batch_id} stands until that batch is applied:"
        f" quality gate failed for vehicle_option (batch {batch_id})"), standing.description
    assert checks["owner_quality_gate"].description == "nothing new landed in this run: nothing to check"
    # The Dagster run agrees with the CLI (exit 1, the entity named): failed, naming the entity behind its source.
    assert code == 1, output
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home / "dagster"))) as instance:
        assert instance.get_run_by_id(latest.run_id).status == dg.DagsterRunStatus.FAILURE
        [failure] = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(
            latest.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records]
        description = failure.event_specific_data.user_failure_data.description
        assert description.startswith(
            f"1 entity(ies) behind their source: TST01.vehicle_option batch {batch_id} (stopped by the quality gate,"
            f" not applied): fix the delivery and land it again with `dataplatform run --force --batch {batch_id}`"
        ), description
