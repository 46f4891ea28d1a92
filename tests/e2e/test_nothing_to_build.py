"""A run that lands nothing and finds nothing waiting does not start dbt (audit/builds.py): no build row,
no materialization of a dbt asset, silver as it was; a build that did not finish clean, or a table dropped
by hand, is built again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from warehouse_db import rows

from ingestion.test_system.generator import simulate, write_day

pytestmark = pytest.mark.e2e


def _run() -> Any:
    from orchestration.execute import run_job

    return run_job(system_id="TST01", echo=lambda _: None)


def _materialized(dagster_run_id: str) -> set[tuple[str, ...]]:
    import dagster as dg

    from orchestration.instance import dagster_instance

    records = dagster_instance().get_records_for_run(dagster_run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return {tuple(r.event_log_entry.dagster_event.asset_key.path) for r in records.records}


def _silver(url: str) -> list[tuple]:
    return sorted((r["vehicle_id"], r["valid_from"], r["valid_to"], r["_modified_by_run_id"])
                  for r in rows(url, "select * from silver.tst01_vehicle"))


def test_a_run_with_nothing_to_build_starts_no_dbt(fresh_warehouse: str) -> None:
    from warehouse.embedded import state_dir

    url = fresh_warehouse
    source: Path = state_dir() / "sources" / "TST01"
    write_day(next(simulate(days=1, seed=5, vehicles=30, owners=10)), source)

    first = _run()
    assert first.success, first.failed_steps
    assert [(b["dagster_run_id"], b["clean"]) for b in rows(url, "select * from audit.transform_build")] == [
        (first.dagster_run_id, True)]
    assert ("silver", "tst01_vehicle") in _materialized(first.dagster_run_id)
    silver = _silver(url)

    # Nothing new, nothing waiting, the last build clean and of this project: dbt is not started.
    second = _run()
    assert second.success, second.failed_steps
    assert [b["dagster_run_id"] for b in rows(url, "select * from audit.transform_build")] == [first.dagster_run_id]
    assert {key[0] for key in _materialized(second.dagster_run_id)} <= {"landing"}
    assert _silver(url) == silver

    # A build that did not finish clean (say, it died after silver, before gold) leaves gold stale: built again.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("update audit.transform_build set clean = false")
    third = _run()
    assert third.success, third.failed_steps
    assert [(b["dagster_run_id"], b["clean"]) for b in rows(
        url, "select * from audit.transform_build order by transform_build_id")] == [
        (first.dagster_run_id, False), (third.dagster_run_id, True)]
    assert ("gold", "owner_vehicles") in _materialized(third.dagster_run_id)
    # Nothing reached silver in that build: its assets are observed, not materialized, and silver is as it was.
    assert ("silver", "tst01_vehicle") not in _materialized(third.dagster_run_id)
    assert _silver(url) == silver

    # A table dropped by hand is built again by the next run, nothing new or not.
    gold = rows(url, "select * from gold.owner_vehicles order by owner_id")
    assert gold
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop table gold.owner_vehicles")
    fourth = _run()
    assert fourth.success, fourth.failed_steps
    assert ("gold", "owner_vehicles") in _materialized(fourth.dagster_run_id)
    assert rows(url, "select * from gold.owner_vehicles order by owner_id") == gold
