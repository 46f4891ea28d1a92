"""Every run start takes the same exclusion: the run queue admits one platform run at a time whatever its job
or selection ("Materialize all" included), and a run's dbt step never builds while another run's dbt build
holds the transform lock, however either run was started (here: a real `dataplatform run`, which the queue
does not see, against a build in progress)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from warehouse_db import rows

from audit.locks import TRANSFORM_LOCK
from ingestion.test_system.generator import simulate, write_day
from orchestration.instance import DAGSTER_YAML, JOB_TAG, prepare_dagster_home
from warehouse.connection import advisory_key
from warehouse.embedded import EmbeddedPostgres

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
_INHERITED = ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER",
              "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME", "DATAPLATFORM_FAULT_PAUSE",
              "DATAPLATFORM_METADATA_DIR")


def test_the_run_queue_admits_one_run_of_any_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # An instance set up by an earlier version (limit on the job tag) gets the limit on every run.
    (home / "dagster.yaml").write_text(f'telemetry:\n  enabled: false\nrun_queue:\n  tag_concurrency_limits:\n'
                                       f'    - key: "{JOB_TAG}"\n      limit: 1\n')
    prepare_dagster_home()
    assert (home / "dagster.yaml").read_text() == DAGSTER_YAML
    with dg.DagsterInstance.get() as instance:
        queue = instance.run_coordinator.get_run_queue_config()
    assert queue.max_concurrent_runs == 1 and not queue.tag_concurrency_limits
    # An operator's own file is theirs.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home()
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_a_dbt_step_waits_while_another_build_holds_the_transform_lock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_day(next(simulate(days=1, seed=11)), home / "sources" / "TST01")
    server = EmbeddedPostgres(home / "postgres")
    url = server.start()  # without a lease: the run below reuses it and leaves it running
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), PYTHONPATH=str(ROOT))
    key = advisory_key(TRANSFORM_LOCK)
    try:
        with psycopg.connect(url, autocommit=True) as holder:
            holder.execute("select pg_advisory_lock(%s)", (key,))  # another run's dbt build, in progress
            run = subprocess.Popen([sys.executable, "-m", "cli.main", "run"], cwd=ROOT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 600
                while not rows(url, "select 1 from pg_locks where locktype = 'advisory' and objid = %s"
                                     " and not granted", (key,)):
                    assert run.poll() is None, run.communicate()[0]
                    assert time.monotonic() < deadline, "the run's dbt step never asked for the transform lock"
                    time.sleep(0.5)
                # Landed and checked, and waiting: nothing of it built while the other build runs.
                layers = rows(url, "select distinct layer from audit.entity_layer_run order by layer")
                assert [r["layer"] for r in layers] == ["landing", "quality"]
                assert rows(url, "select to_regclass('bronze.tst01_owner') as t") == [{"t": None}]
            finally:
                holder.execute("select pg_advisory_unlock(%s)", (key,))
            output, _ = run.communicate(timeout=600)
        assert run.returncode == 0, output
        built = rows(url, "select layer, count(*) as n from audit.entity_layer_run where status = 'succeeded'"
                           " group by layer order by layer")
        assert [(r["layer"], r["n"]) for r in built] == [("bronze", 3), ("landing", 2), ("quality", 3), ("silver", 3)]
        assert rows(url, "select count(*) > 0 as built from bronze.tst01_owner") == [{"built": True}]
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
