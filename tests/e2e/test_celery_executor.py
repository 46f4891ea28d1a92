"""Dagster's Celery executor, for real: a `dataplatform worker` process (Celery, on the machine's RabbitMQ, else
its Redis) takes the steps of the platform's job, and every layer ends up holding exactly what an in-process run
of the same deliveries gives.

The same two days of the test system are run twice, each into a fresh embedded PostgreSQL and Dagster storage of
its own: once in-process, once with DATAPLATFORM_EXECUTOR=celery. The worker listens on a queue named for this
test run only, so test runs on the same broker never take each other's steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from celery.signals import before_task_publish
from psycopg.rows import dict_row

from ingestion.test_system.generator import Day, simulate, write_day

pytestmark = pytest.mark.e2e

BROKERS = ("amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:6379/0")
LAYERS = ("landing", "bronze", "silver", "gold", "audit")
WORKER_READY_SECONDS = 120.0
# Columns that differ between two runs by design: Dagster run ids, wall-clock times, dlt's load ids and row
# hashes, and identity keys (numbered in the order concurrent steps insert); everything else must be equal.
DIFFER_BY_DESIGN = ("dagster_run_id", "_run_id", "_modified_by_run_id", "_dlt_load_id", "_dlt_id")
_ENV = ("DATAPLATFORM_HOME", "DAGSTER_HOME", "DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST",
        "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER", "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME",
        "DATAPLATFORM_EXECUTOR", "DATAPLATFORM_CELERY_BROKER_URL", "DATAPLATFORM_CELERY_BACKEND_URL",
        "DATAPLATFORM_CELERY_QUEUE")


def _broker() -> str:
    """The first broker that answers (DATAPLATFORM_TEST_CELERY_BROKER alone when set); skipped (failed under
    CI=true) when none does."""
    from orchestration.executor import broker_problem

    problems = []
    chosen = os.environ.get("DATAPLATFORM_TEST_CELERY_BROKER")
    for url in [chosen] if chosen else BROKERS:
        problem = broker_problem(url, timeout=3)
        if problem is None:
            return url
        problems.append(problem)
    reason = "no Celery broker answers: " + "; ".join(problems)
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Run:
    """What one way of running left behind."""

    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    outcomes: list[Any] = field(default_factory=list)
    step_workers: dict[str, set[str]] = field(default_factory=dict)  # step key -> Celery workers that ran it
    step_pids: dict[str, set[int]] = field(default_factory=dict)  # step key -> pids its STEP_START came from
    run_configs: list[str] = field(default_factory=list)  # as Dagster's run storage keeps them, serialized
    worker_log: str = ""
    worker_name: str = ""
    worker_pids: set[int] = field(default_factory=set)
    left_behind: set[int] = field(default_factory=set)  # the worker's processes alive after it was stopped
    broker: str = ""
    messages: list[str] = field(default_factory=list)  # every Celery message this process sent, serialized
    tasks: dict[str, list[str]] = field(default_factory=dict)  # Celery task id -> the step keys it carried
    warehouse_password: str = ""


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of every layer (dlt's own bookkeeping tables aside), as sorted rows of (column, value)."""
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        tables = cur.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
            " and table_schema = any(%s) and table_name not like '\\_dlt%%' order by 1, 2", (list(LAYERS),)
        ).fetchall()
        identity = {(r["table_schema"], r["column_name"]) for r in cur.execute(
            "select table_schema, column_name from information_schema.columns where is_identity = 'YES'"
            " and table_schema = any(%s)", (list(LAYERS),))}
        content = {}
        for t in tables:
            schema, table = t["table_schema"], t["table_name"]
            rows = cur.execute(f'select * from "{schema}"."{table}"').fetchall()
            content[f"{schema}.{table}"] = sorted(
                (tuple((k, v) for k, v in row.items() if not _differs_by_design(schema, k, identity)) for row in rows),
                key=repr)
    return content


def _differs_by_design(schema: str, column: str, identity: set[tuple[str, str]]) -> bool:
    return column in DIFFER_BY_DESIGN or column.endswith("_at") or (schema, column) in identity


@contextlib.contextmanager
def _platform(home: Path, **settings: str) -> Iterator[str]:
    """A fresh platform state folder with its own migrated embedded PostgreSQL, exported to the environment as
    the CLI does; the environment (and the cached definitions, built from it) is restored afterwards."""
    from orchestration.definitions import platform_definitions
    from warehouse.connection import export_warehouse_env
    from warehouse.embedded import open_warehouse
    from warehouse.migrations import migrate

    saved = {k: os.environ.get(k) for k in _ENV}
    for key in _ENV:
        os.environ.pop(key, None)
    os.environ.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), **settings)
    platform_definitions.cache_clear()
    try:
        with open_warehouse() as url:
            migrate(url)
            export_warehouse_env(url)
            yield os.environ["DATAPLATFORM_DATABASE_URL"]
    finally:
        platform_definitions.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_days(days: list[Day], home: Path, url: str, run: Run) -> None:
    from orchestration.execute import run_job

    for day in days:
        write_day(day, home / "sources" / "TST01")
        run.outcomes.append(run_job(system_id="TST01", echo=lambda _: None))
    run.tables = _rows(url)
    run.warehouse_password = os.environ["DATAPLATFORM_PG_PASSWORD"]


def _record_steps(run: Run) -> None:
    """Which worker and which process ran each step, from the events in Dagster's run storage."""
    import dagster as dg

    from orchestration.instance import dagster_instance

    instance = dagster_instance()
    for outcome in run.outcomes:
        dagster_run = instance.get_run_by_id(outcome.dagster_run_id)
        run.run_configs.append(json.dumps(dagster_run.run_config, default=str))
        for record in instance.all_logs(outcome.dagster_run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                run.step_pids.setdefault(event.step_key, set()).add(event.pid)
            if event.event_type == dg.DagsterEventType.ENGINE_EVENT:
                metadata = event.engine_event_data.metadata
                if "Celery worker" in metadata:
                    run.step_workers.setdefault(event.step_key, set()).add(str(metadata["Celery worker"].value))


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None:
            pytest.fail(f"the worker ended with status {process.returncode} before it was ready:\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the worker was not ready after {WORKER_READY_SECONDS}s:\n{log.read_text()}")
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


def _stop(process: subprocess.Popen[bytes]) -> tuple[set[int], set[int]]:
    """SIGTERM to `dataplatform worker`, which stops its Celery group; whatever it left is killed. Returns the
    pids of the worker's processes, and those still alive after it had ended."""
    family = {process.pid}
    with contextlib.suppress(psutil.Error):
        family |= {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
    process.send_signal(signal.SIGTERM)
    left: set[int] = set()
    try:
        process.wait(timeout=60)
        left = {pid for pid in family if _alive(pid)}
    finally:
        for pid in family:  # only ours, by pid
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=10)
    return family, left


def _delete_queue(broker: str, queue: str) -> None:
    """The test's queue and exchange are left on no broker. RabbitMQ deletes them by name; kombu's Redis transport
    only deletes the bindings its channel knows, so it is told them by declaring the queue as Celery did."""
    from kombu import Connection, Exchange, Queue

    with Connection(broker) as connection:
        channel = connection.default_channel
        if broker.startswith("amqp"):
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
            return
        declared = Queue(queue, Exchange(queue, "direct"), queue)(channel)
        declared.declare()
        declared.delete()
        declared.exchange.delete()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The same two deliveries, run in-process and on a Celery worker, each into a fresh warehouse."""
    broker = _broker()
    days = list(simulate(days=2, seed=11))
    result = {"in_process": Run(), "celery": Run()}

    home = tmp_path_factory.mktemp("in_process")
    with _platform(home) as url:
        _run_days(days, home, url, result["in_process"])

    home = tmp_path_factory.mktemp("celery")
    queue = f"dataplatform-test-{uuid.uuid4().hex[:12]}"
    worker_name = f"test-{uuid.uuid4().hex[:8]}"
    with _platform(home, DATAPLATFORM_EXECUTOR="celery", DATAPLATFORM_CELERY_BROKER_URL=broker,
                   DATAPLATFORM_CELERY_QUEUE=queue) as url:
        log = home / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "worker", "--name", worker_name, "--concurrency", "2"],
                stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ), start_new_session=True,
            )
        run = result["celery"]
        run.worker_name, run.broker = worker_name, broker

        def sent(body: Any = None, headers: Any = None, **_: Any) -> None:
            run.messages.append(json.dumps([headers, body], default=str))
            steps = body[1]["execute_step_args_packed"]["step_keys_to_execute"]  # body: (args, kwargs, options)
            run.tasks[headers["id"]] = steps

        before_task_publish.connect(sent, weak=False)
        try:
            _wait_for(log, " ready.", worker)
            _run_days(days, home, url, run)
            _record_steps(run)
        finally:
            before_task_publish.disconnect(sent)
            run.worker_pids, run.left_behind = _stop(worker)
            run.worker_log = log.read_text(errors="replace")
            _delete_queue(broker, queue)
    return result


def test_both_runs_succeed_one_batch_a_day(runs: dict[str, Run]) -> None:
    for name, run in runs.items():
        assert [o.success for o in run.outcomes] == [True, True], (name, [o.failed_steps for o in run.outcomes])
        assert [len(o.system_runs) for o in run.outcomes] == [1, 1], name


def test_every_step_ran_in_the_worker(runs: dict[str, Run]) -> None:
    run = runs["celery"]
    steps = set(run.step_pids)
    assert {"landing_tst01", "quality_tst01", "dbt_layers"} <= steps, steps
    assert run.step_workers.keys() == steps  # each step is reported as executed by a Celery worker ...
    host = f"{run.worker_name}@"
    assert all(w.startswith(host) for ws in run.step_workers.values() for w in ws), run.step_workers  # ... by ours
    for step, pids in run.step_pids.items():  # ... in one of the worker's processes, not this one
        assert pids <= run.worker_pids and os.getpid() not in pids, (step, pids, run.worker_pids)
    # Every step of both runs was sent as a task of its own, and the worker's log shows each task succeeded.
    assert sorted(k for keys in run.tasks.values() for k in keys) == sorted([*steps, *steps])
    for task_id in run.tasks:
        assert f"Task execute_plan[{task_id}] succeeded" in run.worker_log, task_id


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_holds_what_an_in_process_run_gives(runs: dict[str, Run], layer: str) -> None:
    in_process, celery = runs["in_process"].tables, runs["celery"].tables
    tables = sorted(t for t in in_process if t.startswith(f"{layer}."))
    assert tables, f"no table in {layer}"
    assert sorted(t for t in celery if t.startswith(f"{layer}.")) == tables
    assert any(in_process[t] for t in tables), f"every table of {layer} is empty: nothing would be compared"
    for table in tables:
        assert celery[table] == in_process[table], table


def test_no_secret_reaches_a_celery_message_run_storage_or_the_worker_log(runs: dict[str, Run]) -> None:
    """The broker's URL and the warehouse's password stay in each process's environment: a message names the
    job by its code pointer and the Dagster storage by its settings, nothing more."""
    run = runs["celery"]
    assert len(run.messages) >= len(run.step_workers)  # one task per step and run at least
    assert any("orchestration.definitions" in m and "platform_job" in m for m in run.messages)
    for text in (*run.messages, *run.run_configs, run.worker_log):
        assert run.broker not in text
        assert run.warehouse_password not in text


def test_stopping_the_worker_stops_all_its_processes(runs: dict[str, Run]) -> None:
    run = runs["celery"]
    assert len(run.worker_pids) >= 3  # `dataplatform worker`, Celery's main process and its pool
    assert run.left_behind == set()
    assert "stopped (SIGTERM)" in run.worker_log
