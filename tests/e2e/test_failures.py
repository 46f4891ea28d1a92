"""Surviving failures: runs really killed (SIGKILL) in the middle of landing, bronze and silver; two
runs of one system at once; bad source files; a source that adds a field. After each, the next run
ends with exactly the rows a clean run produces, and the audit tables tell what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from scd2_oracle import expected_silver
from warehouse_db import rows

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import load_catalog
from warehouse.embedded import EmbeddedPostgres

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ENTITIES = ["owner", "vehicle", "vehicle_option"]
_INHERITED = ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER",
              "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME", "DATAPLATFORM_FAULT_PAUSE")


def _cli(home: Path, *args: str, fault: str | None = None) -> subprocess.Popen[str]:
    """`dataplatform ...` in its own process group (so a kill takes dbt's subprocess with it)."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    if fault:
        env["DATAPLATFORM_FAULT_PAUSE"] = fault
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(process: subprocess.Popen[str], *, timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def _url(home: Path) -> str:
    return EmbeddedPostgres(home / "postgres").url()


def _wait_for_pause(home: Path, point: str, process: subprocess.Popen[str], *, timeout: float = 180) -> None:
    """Until the run sits at the fault point: a marker file (Python steps) or its pg_sleep (dbt steps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended before reaching {point}: {process.communicate()[0][-3000:]}"
        if (home / f"fault-{point}").exists():
            return
        if (home / "postgres" / "port").exists():
            try:
                found = rows(_url(home), "select 1 from pg_stat_activity where query like %s",
                             (f"%dataplatform_fault:{point}%",))
            except psycopg.OperationalError:
                found = []
            if found:
                return
        time.sleep(0.3)
    raise AssertionError(f"the run did not reach {point} within {timeout}s")


def _kill(process: subprocess.Popen[str]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_runs_killed_in_landing_bronze_and_silver_recover_exactly(tmp_path: Path) -> None:
    home, catalog = tmp_path / "home", load_catalog()
    source = home / "sources" / "TST01"
    server = EmbeddedPostgres(home / "postgres")
    server.start()  # started here without a lease: the runs below reuse it and leave it running
    try:
        _kill_and_recover(home, catalog, source)
    finally:
        server.stop()


def _kill_and_recover(home: Path, catalog: Any, source: Path) -> None:
    days = list(simulate(days=3, seed=3))
    for day, point in zip(days, ("landing", "bronze", "silver"), strict=True):
        write_day(day, source)
        killed = _cli(home, "run", fault=f"{point}:300")
        _wait_for_pause(home, point, killed)
        if point == "landing":
            # Meanwhile a second run of the same system does not write: it skips, saying why.
            code, output = _finish(_cli(home, "run"))
            assert code == 4, output
            assert "another run of TST01 is in progress" in output
        _kill(killed)
        code, output = _finish(_cli(home, "run"))
        assert code == 0, output[-5000:]

    url = _url(home)
    runs = rows(url, "select batch_id, source_ref, status from audit.system_run order by system_run_id")
    assert [(r["source_ref"], r["status"]) for r in runs] == [
        ("2026-01-01", "abandoned"), ("2026-01-01", "succeeded"),
        ("2026-01-02", "abandoned"), ("2026-01-02", "succeeded"),
        ("2026-01-03", "abandoned"), ("2026-01-03", "succeeded")]
    batches = [runs[i]["batch_id"] for i in (1, 3, 5)]
    assert [runs[i]["batch_id"] for i in (0, 2, 4)] == batches  # the re-run is the same batch
    killed_layers = rows(url, "select r.source_ref, l.layer, l.status from audit.system_layer_run l"
                               " join audit.system_run r using (system_run_id) where r.status = 'abandoned'"
                               " order by l.system_layer_run_id")
    assert ("2026-01-01", "landing", "abandoned") in [tuple(r.values()) for r in killed_layers]
    resumed = rows(url, "select r.source_ref, l.status from audit.system_layer_run l join audit.system_run r"
                         " using (system_run_id) where l.layer = 'landing' and r.status = 'succeeded' order by 1")
    # Day 1 was killed before landing finished: landed again. Days 2 and 3 had landed: resumed, not re-landed.
    assert [tuple(r.values()) for r in resumed] == [
        ("2026-01-01", "succeeded"), ("2026-01-02", "skipped"), ("2026-01-03", "skipped")]

    for day, batch in zip(days, batches, strict=True):  # landing and bronze: each batch exactly once
        assert rows(url, "select count(*) as n, count(distinct _record_no) as d from landing.tst01_vehicles"
                          " where _batch_id = %s", (batch,))[0] == {"n": len(day.vehicles), "d": len(day.vehicles)}
        assert rows(url, "select count(*) as n from bronze.tst01_vehicle where _batch_id = %s",
                    (batch,))[0]["n"] == len(day.vehicles)
    for entity in ENTITIES:  # silver: exactly the history of a clean run
        names = [c.name for c in catalog.columns[entity]] + [
            "valid_from", "valid_to", "_opened_by_batch_id", "_closed_by_batch_id"]
        actual = rows(url, f"select {', '.join(names)} from silver.tst01_{entity}")
        expected = expected_silver(catalog, entity, days, batches)
        assert sorted((tuple(r[n] for n in names) for r in actual), key=repr) == \
            sorted((tuple(r[n] for n in names) for r in expected), key=repr), entity
    applied = rows(url, "select batch_id, count(*) as n from audit.entity_layer_run where layer = 'silver'"
                         " and status = 'succeeded' group by batch_id order by batch_id")
    assert applied == [{"batch_id": b, "n": 3} for b in batches]  # each batch applied once per entity


def test_ctrl_c_in_dbt_cancels_its_queries_and_the_next_run_applies_the_batch(tmp_path: Path) -> None:
    """dbt runs inside the run's process: Ctrl-C there (SIGINT to the CLI alone) cancels dbt's running query, so no
    statement of the stopped run goes on in the warehouse after it exited (a pg_sleep paused in silver would run
    for 300 s), and the next run applies the batch exactly once."""
    home, catalog = tmp_path / "home", load_catalog()
    server = EmbeddedPostgres(home / "postgres")
    server.start()
    try:
        days = list(simulate(days=1, seed=5))
        write_day(days[0], home / "sources" / "TST01")
        interrupted = _cli(home, "run", fault="silver:300")
        _wait_for_pause(home, "silver", interrupted)
        interrupted.send_signal(signal.SIGINT)
        code, output = _finish(interrupted, timeout=120)
        assert code != 0, output[-5000:]
        url = _url(home)
        assert rows(url, "select pid, state from pg_stat_activity where query like %s",
                    ("%dataplatform_fault:silver%",)) == [], output[-5000:]

        code, output = _finish(_cli(home, "run"))
        assert code == 0, output[-5000:]
        [batch] = [r["batch_id"] for r in rows(url, "select distinct batch_id from audit.landed_batch")]
        names = [c.name for c in catalog.columns["vehicle"]] + ["valid_from", "valid_to"]
        actual = rows(url, f"select {', '.join(names)} from silver.tst01_vehicle")
        expected = expected_silver(catalog, "vehicle", days, [batch])
        assert sorted((tuple(r[n] for n in names) for r in actual), key=repr) == \
            sorted((tuple(r[n] for n in names) for r in expected), key=repr)
    finally:
        server.stop()


def _run_in_process() -> Any:
    from orchestration.execute import run_job

    messages: list[str] = []
    outcome = run_job(system_id="TST01", echo=messages.append)
    return outcome, "\n".join(messages)


def _malformed(path: Path) -> str:
    path.write_text('[{"vehicle_id": "V1",, }]')
    return f"{path}: not valid JSON at line 1, column 22"


def _nul_in_record_5(path: Path) -> str:
    """A value the reader's JSON parser accepts but PostgreSQL's jsonb refuses (it used to fail in dlt's
    COPY, after its retries, naming a line of dlt's own CSV file)."""
    lines = path.read_text().split("\n")  # '[', then one record per line
    lines[5] = lines[5].replace('"color": "', '"color": "\\u0000', 1)
    path.write_text("\n".join(lines))
    column = lines[5].index("\\u0000") + 1
    return f"{path}: record 5, line 6, column {column}: the escape \\u0000 (a NUL character)"


@pytest.mark.parametrize("spoil", [_malformed, _nul_in_record_5])
def test_a_bad_source_file_fails_the_batch_naming_file_and_record_and_loses_nothing(
    fresh_warehouse: str, spoil: Any
) -> None:
    from warehouse.embedded import state_dir

    url, source = fresh_warehouse, state_dir() / "sources" / "TST01"
    days = list(simulate(days=2, seed=9))
    write_day(days[0], source)
    assert _run_in_process()[0].success
    before = {e: rows(url, f"select * from silver.tst01_{e} order by 1, valid_from") for e in ENTITIES}
    folder = write_day(days[1], source)
    expected = spoil(folder / "vehicles.json")
    outcome, output = _run_in_process()
    assert not outcome.success
    run = rows(url, "select batch_id, status, message from audit.system_run order by system_run_id desc limit 1")[0]
    assert run["status"] == "failed"
    assert expected in run["message"]
    landed = rows(url, "select count(*) as n from landing.tst01_vehicles where _batch_id = %s", (run["batch_id"],))
    assert landed == [{"n": 0}]
    landed = rows(url, "select count(*) as n from landing.tst01_owners where _batch_id = %s", (run["batch_id"],))
    assert landed == [{"n": 0}]
    assert {e: rows(url, f"select * from silver.tst01_{e} order by 1, valid_from") for e in ENTITIES} == before
    write_day(days[1], source)  # the source fixes its file: the same delivery loads on the next run
    fixed, _ = _run_in_process()
    assert fixed.success and fixed.system_runs[0].batch_id == run["batch_id"]


def test_a_new_source_field_lands_and_is_reported(fresh_warehouse: str) -> None:
    from warehouse.embedded import state_dir

    url = fresh_warehouse
    day = next(simulate(days=1, seed=4))
    folder = write_day(day, state_dir() / "sources" / "TST01")
    owners = json.loads((folder / "owners.json").read_text())
    for owner in owners:
        owner["loyalty_tier"] = "gold"
    (folder / "owners.json").write_text(json.dumps(owners))
    outcome, output = _run_in_process()
    assert outcome.success, output
    assert "note: landing owners: new source fields, landed but not modelled: loyalty_tier" in output
    with_new_field = rows(url, "select count(*) as n from landing.tst01_owners where payload ? 'loyalty_tier'")
    assert with_new_field[0]["n"] == len(owners)
    assert rows(url, "select count(*) as n from silver.tst01_owner")[0]["n"] == len(owners)


def test_an_empty_delivery_is_stopped_by_the_gate_instead_of_closing_every_key(fresh_warehouse: str) -> None:
    """A full load that suddenly returns nothing would close every current version; the row-count
    check against the previous batch stops it for the entities that came back empty."""
    from warehouse.embedded import state_dir

    url, source = fresh_warehouse, state_dir() / "sources" / "TST01"
    days = list(simulate(days=2, seed=12))
    write_day(days[0], source)
    assert _run_in_process()[0].success
    before = {e: rows(url, f"select * from silver.tst01_{e} order by 1, valid_from") for e in ENTITIES}
    folder = write_day(days[1], source)
    (folder / "vehicles.json").write_text("[]")
    outcome, output = _run_in_process()
    assert not outcome.success
    batch = outcome.system_runs[0].batch_id
    gate = {r["entity"]: r["status"] for r in rows(
        url, "select entity, status from audit.entity_layer_run where layer = 'quality' and batch_id = %s", (batch,))}
    assert gate == {"owner": "succeeded", "vehicle": "failed", "vehicle_option": "failed"}
    assert "FAILED quality vehicle" in output
    after = {
        e: rows(url, f"select * from silver.tst01_{e} order by 1, valid_from") for e in ("vehicle", "vehicle_option")
    }
    assert after == {e: before[e] for e in ("vehicle", "vehicle_option")}  # nothing closed
    assert rows(url, "select count(*) as n from silver.tst01_owner where _opened_by_batch_id = %s or "
                      "_closed_by_batch_id = %s", (batch, batch))[0]["n"] > 0  # owners went on


def _landed_bronze_silver(url: str, batch: int) -> dict[str, list[dict[str, Any]]]:
    """Every row of one batch in landing and bronze, and every silver row: what a re-land may change."""
    tables = {"landing.tst01_owners": "_record_no", "landing.tst01_vehicles": "_record_no",
              "bronze.tst01_owner": "owner_id", "bronze.tst01_vehicle": "vehicle_id"}
    found = {t: rows(url, f"select * from {t} where _batch_id = %s order by {key}", (batch,))
             for t, key in tables.items()}
    return found | {f"silver.tst01_{e}": rows(url, f"select * from silver.tst01_{e} order by 1, valid_from")
                    for e in ENTITIES}


def test_a_failing_forced_reland_keeps_the_old_rows_and_a_succeeding_one_replaces_them(fresh_warehouse: str) -> None:
    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    url, source = fresh_warehouse, state_dir() / "sources" / "TST01"
    day = next(simulate(days=1, seed=21))
    folder = write_day(day, source)
    first = run_job(system_id="TST01", echo=lambda _: None)
    assert first.success
    batch = first.system_runs[0].batch_id
    before = _landed_bronze_silver(url, batch)
    assert len(before["landing.tst01_vehicles"]) == len(day.vehicles)

    (folder / "vehicles.json").write_text('[{"vehicle_id": "V1",, }]')  # the re-sent delivery is broken
    messages: list[str] = []
    failed = run_job(system_id="TST01", force=True, echo=messages.append)
    assert not failed.success
    run = rows(url, "select batch_id, status, message from audit.system_run order by system_run_id desc limit 1")[0]
    assert (run["batch_id"], run["status"]) == (batch, "failed")
    assert f"landing failed, batch {batch} keeps the rows of its earlier landing, as they were" in run["message"]
    assert f"{folder / 'vehicles.json'}: not valid JSON at line 1, column 22" in run["message"]
    assert _landed_bronze_silver(url, batch) == before  # landing, bronze and silver exactly as they were

    write_day(day, source)  # fixed and re-sent again: the forced re-land replaces the old rows
    replaced = run_job(system_id="TST01", force=True, echo=lambda _: None)
    assert replaced.success and replaced.system_runs[0].batch_id == batch
    after = _landed_bronze_silver(url, batch)
    for table in ("landing.tst01_owners", "landing.tst01_vehicles"):
        assert {r["_run_id"] for r in after[table]} == {replaced.dagster_run_id}  # only the new rows
        strip = ("_run_id", "_loaded_at")
        assert [{k: v for k, v in r.items() if k not in strip} for r in after[table]] == \
            [{k: v for k, v in r.items() if k not in strip} for r in before[table]]
    assert {r["_run_id"] for r in after["bronze.tst01_vehicle"]} == {replaced.dagster_run_id}
    assert len(after["bronze.tst01_vehicle"]) == len(day.vehicles)
    silver = [t for t in after if t.startswith("silver.")]
    assert silver and {t: after[t] for t in silver} == {t: before[t] for t in silver}  # the same content: no change


def _break_bronze_for_a_vehicle(url: str, folder: Path) -> None:
    """A batch that passes the gate but that bronze cannot build: the warehouse's own rule (a check
    constraint a DBA added to bronze) refuses one vehicle's year, a real database error in bronze."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table bronze.tst01_vehicle drop constraint if exists vehicle_year_plausible")
        conn.execute("alter table bronze.tst01_vehicle add constraint vehicle_year_plausible check (year < 2100)")
    vehicles = json.loads((folder / "vehicles.json").read_text())
    vehicles[0]["year"] = 2200
    (folder / "vehicles.json").write_text(json.dumps(vehicles))


def _silver_as_oracle(url: str, catalog: Any, entity: str, days: list[Any], batches: list[int]) -> None:
    names = [c.name for c in catalog.columns[entity]] + [
        "valid_from", "valid_to", "_opened_by_batch_id", "_closed_by_batch_id"]
    actual = rows(url, f"select {', '.join(names)} from silver.tst01_{entity}")
    expected = expected_silver(catalog, entity, days, batches)
    assert sorted((tuple(r[n] for n in names) for r in actual), key=repr) == \
        sorted((tuple(r[n] for n in names) for r in expected), key=repr), entity


def _held_back_scenario(url: str, source: Path) -> tuple[list[Any], list[int], dict[str, Any]]:
    """Day 1 builds; day 2 fails in bronze for vehicle only; day 3 waits behind it for vehicle only."""
    from orchestration.execute import run_job

    days = list(simulate(days=3, seed=31))
    write_day(days[0], source)
    first = run_job(system_id="TST01", echo=lambda _: None)
    assert first.success
    _break_bronze_for_a_vehicle(url, write_day(days[1], source))
    messages: list[str] = []
    failed = run_job(system_id="TST01", echo=messages.append)
    write_day(days[2], source)
    waiting_messages: list[str] = []
    waiting = run_job(system_id="TST01", echo=waiting_messages.append)
    batches = [o.system_runs[0].batch_id for o in (first, failed, waiting)]
    return days, batches, {"failed": failed, "failed_output": "\n".join(messages), "waiting": waiting,
                           "waiting_output": "\n".join(waiting_messages)}


def _entity_rows(url: str, layer: str, batch: int) -> dict[str, dict[str, Any]]:
    found = rows(url, "select entity, status, message from audit.entity_layer_run where layer = %s and batch_id = %s"
                       " and dagster_run_id <> 'dataplatform skip' order by entity_layer_run_id", (layer, batch))
    return {r["entity"]: r for r in found}


def test_a_batch_that_fails_in_bronze_fails_alone_holds_its_entity_back_and_applies_once_resent(
        fresh_warehouse: str) -> None:
    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    url, source, catalog = fresh_warehouse, state_dir() / "sources" / "TST01", load_catalog()
    days, batches, seen = _held_back_scenario(url, source)
    b1, b2, b3 = batches

    assert not seen["failed"].success
    bronze = _entity_rows(url, "bronze", b2)
    assert {e: r["status"] for e, r in bronze.items()} == {
        "owner": "succeeded", "vehicle": "failed", "vehicle_option": "succeeded"}
    message = bronze["vehicle"]["message"]
    assert f"batch {b2} failed in bronze for vehicle" in message and "vehicle_year_plausible" in message
    assert f"dataplatform run --force --batch {b2}" in message
    assert f"dataplatform skip --entity vehicle --batch {b2}" in message
    silver = _entity_rows(url, "silver", b2)
    assert silver["owner"]["status"] == silver["vehicle_option"]["status"] == "succeeded"  # the others go on

    # The next batch: vehicle waits behind the failed one (history stays in order), the others apply it.
    assert not seen["waiting"].success
    bronze = _entity_rows(url, "bronze", b3)
    assert bronze["vehicle"]["status"] == "skipped"
    assert f"waiting behind batch {b2}, which failed in bronze for vehicle" in bronze["vehicle"]["message"]
    assert f"HELD BACK TST01.vehicle: batch {b2} failed in bronze" in seen["waiting_output"]
    assert f"dataplatform skip --entity vehicle --batch {b2}" in seen["waiting_output"]
    assert rows(url, "select count(*) as n from bronze.tst01_vehicle where _batch_id in (%s, %s)",
                (b2, b3))[0]["n"] == 0
    for entity in ("owner", "vehicle_option"):
        _silver_as_oracle(url, catalog, entity, days, batches)
    _silver_as_oracle(url, catalog, "vehicle", days[:1], batches[:1])

    nothing_new: list[str] = []
    assert not run_job(system_id="TST01", echo=nothing_new.append).success  # still behind: not exit 0
    assert f"HELD BACK TST01.vehicle: batch {b2}" in "\n".join(nothing_new)

    write_day(days[1], source)  # the source fixes its delivery; it is re-sent: it applies, then day 3
    resent = run_job(system_id="TST01", force=True, batch=b2, echo=lambda _: None)
    assert resent.success and resent.system_runs[0].batch_id == b2
    for entity in ENTITIES:
        _silver_as_oracle(url, catalog, entity, days, batches)
    assert run_job(system_id="TST01", echo=lambda _: None).success


def test_a_batch_skipped_by_the_operator_releases_the_batches_behind_it(fresh_warehouse: str) -> None:
    from cli.main import main
    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    url, source, catalog = fresh_warehouse, state_dir() / "sources" / "TST01", load_catalog()
    days, batches, _ = _held_back_scenario(url, source)
    b1, b2, b3 = batches
    assert main(["skip", "--entity", "vehicle", "--batch", "999999"]) == 2
    assert main(["skip", "--entity", "vehicle", "--batch", str(b2), "--reason", "year 2200 is a typo"]) == 0
    skips = rows(url, "select system_id, entity, batch_id, reason from audit.entity_batch_skip")
    assert skips == [{"system_id": "TST01", "entity": "vehicle", "batch_id": b2, "reason": "year 2200 is a typo"}]
    recorded = rows(url, "select status, message from audit.entity_layer_run"
                          " where dagster_run_id = 'dataplatform skip'")
    assert [r["status"] for r in recorded] == ["skipped"] and "year 2200 is a typo" in recorded[0]["message"]

    assert run_job(system_id="TST01", echo=lambda _: None).success  # day 3 applies for vehicle; day 2 never
    _silver_as_oracle(url, catalog, "vehicle", [days[0], days[2]], [b1, b3])
    assert rows(url, "select count(*) as n from bronze.tst01_vehicle where _batch_id = %s", (b2,))[0]["n"] == 0
    assert rows(url, "select count(*) as n from bronze.tst01_vehicle where _batch_id = %s",
                (b3,))[0]["n"] == len(days[2].vehicles)


def test_a_corrected_delivery_resent_with_force_reaches_silver_and_the_same_one_changes_nothing(
        fresh_warehouse: str) -> None:
    import dataclasses

    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    url, source, catalog = fresh_warehouse, state_dir() / "sources" / "TST01", load_catalog()
    days = list(simulate(days=2, seed=41))
    outcomes = []
    for day in days:
        write_day(day, source)
        outcomes.append(run_job(system_id="TST01", echo=lambda _: None))
        assert outcomes[-1].success
    b1, b2 = (o.system_runs[0].batch_id for o in outcomes)
    silver = {e: rows(url, f"select * from silver.tst01_{e} order by 1, valid_from") for e in ENTITIES}

    write_day(days[0], source)  # the first delivery re-sent as it was: nothing changes in silver
    assert run_job(system_id="TST01", force=True, batch=b1, echo=lambda _: None).success
    assert {e: rows(url, f"select * from silver.tst01_{e} order by 1, valid_from") for e in ENTITIES} == silver

    key, record = next(iter(days[0].vehicles.items()))
    corrected = dataclasses.replace(days[0], vehicles={**days[0].vehicles, key: {**record, "color": "ultraviolet"}})
    write_day(corrected, source)  # ... and corrected: silver applies it again, and day 2 after it
    messages: list[str] = []
    assert run_job(system_id="TST01", force=True, batch=b1, echo=messages.append).success
    for entity in ENTITIES:
        _silver_as_oracle(url, catalog, entity, [corrected, days[1]], [b1, b2])
    assert f"note: silver vehicle: batch {b1} was landed again with other values: silver re-applied it" \
        in "\n".join(messages)
    assert rows(url, "select color from silver.tst01_vehicle where vehicle_id = %s and _opened_by_batch_id = %s",
                (key, b1)) == [{"color": "ultraviolet"}]


def test_an_entity_left_behind_by_the_gate_fails_every_run_until_resent_or_skipped(fresh_warehouse: str) -> None:
    from cli.main import main
    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    url, source = fresh_warehouse, state_dir() / "sources" / "TST01"
    days = list(simulate(days=2, seed=43))
    write_day(days[0], source)
    assert run_job(system_id="TST01", echo=lambda _: None).success
    (write_day(days[1], source) / "vehicles.json").write_text("[]")
    stopped = run_job(system_id="TST01", echo=lambda _: None)
    assert not stopped.success
    batch = stopped.system_runs[0].batch_id

    messages: list[str] = []
    again = run_job(system_id="TST01", echo=messages.append)  # nothing new, but vehicle is still behind
    output = "\n".join(messages)
    assert not again.success and again.system_runs == []
    for entity in ("vehicle", "vehicle_option"):
        assert f"HELD BACK TST01.{entity}: batch {batch} was stopped by the quality gate and is not applied" in output
        assert f"dataplatform skip --entity {entity} --batch {batch}" in output
    assert "TST01.owner" not in output  # owner applied the batch

    for entity in ("vehicle", "vehicle_option"):  # the operator accepts the gap
        assert main(["skip", "--entity", entity, "--batch", str(batch), "--reason", "empty delivery"]) == 0
    assert rows(url, "select entity, batch_id from audit.entity_batch_skip order by entity") == [
        {"entity": "vehicle", "batch_id": batch}, {"entity": "vehicle_option", "batch_id": batch}]
    assert run_job(system_id="TST01", echo=lambda _: None).success


def test_a_forced_reland_killed_before_it_finished_leaves_the_old_rows(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = EmbeddedPostgres(home / "postgres")
    server.start()  # started here without a lease: the runs below reuse it and leave it running
    try:
        day = next(simulate(days=1, seed=51))
        write_day(day, home / "sources" / "TST01")
        code, output = _finish(_cli(home, "run"))
        assert code == 0, output[-5000:]
        url = _url(home)
        batch = rows(url, "select batch_id from audit.system_run")[0]["batch_id"]
        before = _landed_bronze_silver(url, batch)

        killed = _cli(home, "run", "--force", fault="landing:300")
        _wait_for_pause(home, "landing", killed)  # dlt has written the new rows beside the old ones
        assert rows(url, "select count(*) as n from landing.tst01_vehicles where _batch_id = %s",
                    (batch,))[0]["n"] == 2 * len(day.vehicles)
        _kill(killed)
        code, output = _finish(_cli(home, "run"))  # takes over: the dead re-land's rows go, the old ones stay
        assert code == 0, output[-5000:]
        assert "rows of unfinished re-landings" in output
        assert _landed_bronze_silver(url, batch) == before
    finally:
        server.stop()
