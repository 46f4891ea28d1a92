"""The README's webhook walk-through with real processes: `dataplatform dev` (UI + daemon) and `dataplatform serve`
on one embedded warehouse; a webhook call over HTTP; the daemon's `run_requests` sensor starts the run through
the run queue, and it lands the new delivery and builds every layer. The service then names that run, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import DEFAULT_FOLDER
from warehouse.embedded import EmbeddedPostgres

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 600  # a loaded build machine: initdb, migrations, Dagster's start-up
RUN_TIMEOUT = 900  # the sensor's tick, the queue, a run worker's start-up, landing, the gate and dbt
TOKEN, API_TOKEN = "walkthrough-token", "walkthrough-operator"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, **kwargs: Any) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=10, **kwargs)
    except httpx.HTTPError:
        return None


@contextlib.contextmanager
def _process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `dataplatform` command in a subprocess, stopped with SIGTERM (then killed) at the end."""
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(what: str, check: Any, process: subprocess.Popen[bytes], log: Path, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert process.poll() is None, f"{what}: the process ended:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s:\n{log.read_text()}"
        time.sleep(2)


def test_a_webhook_call_starts_a_run_through_the_daemon_that_builds_every_layer(tmp_path: Path) -> None:
    home, declarations = tmp_path / "home", tmp_path / "declarations"
    declarations.mkdir()
    for name in ("systems.json", "entities.json", "actions.json"):
        (declarations / name).write_text((DEFAULT_FOLDER / name).read_text())
    systems = json.loads((declarations / "systems.json").read_text())
    systems["systems"][0]["webhook"] = {"token": {"type": "secret", "key": "tst01/webhook_token"}}
    (declarations / "systems.json").write_text(json.dumps(systems))
    day = next(simulate(days=1, seed=21))
    write_day(day, home / "sources" / "TST01")
    ui_port, api_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAPLATFORM_")}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), PYTHONPATH=str(ROOT),
               DATAPLATFORM_METADATA_DIR=str(declarations), DATAPLATFORM_SECRET_TST01_WEBHOOK_TOKEN=TOKEN,
               DATAPLATFORM_SECRET_API_TOKEN=API_TOKEN, DATAPLATFORM_ENV_FILE=str(tmp_path / "absent.env"))
    dev_log, serve_log = tmp_path / "dev.log", tmp_path / "serve.log"
    with _process(["dev", "--port", str(ui_port)], env, dev_log) as dev:
        _wait_for("the UI", lambda: _get(f"http://127.0.0.1:{ui_port}/server_info"), dev, dev_log, START_TIMEOUT)
        with _process(["serve", "--port", str(api_port)], env, serve_log) as serve:
            base = f"http://127.0.0.1:{api_port}"
            _wait_for("the service", lambda: _get(f"{base}/openapi.json"), serve, serve_log, START_TIMEOUT)
            call = httpx.post(f"{base}/hooks/TST01", headers={"Authorization": f"Bearer {TOKEN}",
                                                               "X-Delivery-Id": day.date.isoformat()})
            assert call.status_code == 202, call.text
            request_id = call.json()["request"]["request_id"]

            def finished() -> dict[str, Any] | None:
                answer = _get(f"{base}/requests/{request_id}", headers={"Authorization": f"Bearer {API_TOKEN}"})
                run = answer.json()["run"] if answer is not None and answer.status_code == 200 else None
                return run if run and run["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None

            run = _wait_for("the run", finished, dev, dev_log, RUN_TIMEOUT)
            assert run["status"] == "SUCCESS", dev_log.read_text()
            assert (run["job"], run["tags"]["dataplatform/trigger"], run["tags"]["dataplatform/delivery_id"],
                    run["tags"]["dagster/sensor_name"], run["tags"]["dagster/run_key"]) == \
                ("run_tst01", "webhook", day.date.isoformat(), "run_requests",
                 f"run_request:{request_id}@{call.json()['request']['received_at']}")
            repeated = httpx.post(f"{base}/hooks/TST01", headers={"Authorization": f"Bearer {TOKEN}",
                                                                   "X-Delivery-Id": day.date.isoformat()})
            assert (repeated.status_code, repeated.json()["run"]["run_id"]) == (200, run["run_id"])

            url = EmbeddedPostgres(home / "postgres").url()  # the server `dev` started, still running
            with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
                batches = cur.execute("select source_ref, status, dagster_run_id from audit.system_run").fetchall()
                owners = cur.execute("select owner_id, name from silver.tst01_owner where valid_to is null")\
                    .fetchall()
                runs = cur.execute("select count(*) as n from audit.run_request").fetchone()
            assert batches == [{"source_ref": day.date.isoformat(), "status": "succeeded",
                                "dagster_run_id": run["run_id"]}]
            assert {r["owner_id"]: r["name"] for r in owners} == {k: o["name"] for k, o in day.owners.items()}
            assert runs == {"n": 1}

            serve.send_signal(signal.SIGTERM)  # as a service manager stops it
            assert serve.wait(timeout=120) == 0, serve_log.read_text()
            assert "service stopped (SIGTERM)" in serve_log.read_text()
