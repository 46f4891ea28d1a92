"""A run that fails where no event reports it is notified once, by the `platform_run_failures` sensor; a gate failure
(an event, notified by `platform_events`) is not notified a second time.

Real pieces: `dataplatform run` in a subprocess (its in-process Dagster run lands in a DAGSTER_HOME the test reads
as a real instance), the sensor resolved from the platform's Definitions and evaluated with Dagster's test API
(`evaluate_tick`, daemon-less, with the cursors the daemon would keep), a Slack-compatible webhook and an SMTP
server on loopback (tests/conftest.py)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from warehouse_db import fresh_database, platform_environment, rows

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import DEFAULT_FOLDER, Catalog, load_catalog
from observability.metrics import metrics_text
from orchestration.instance import DAGSTER_YAML

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "smtp-Pa55-for-tests"  # tests/conftest.py SMTP_PASSWORD

pytestmark = pytest.mark.e2e


@dataclass
class Platform:
    url: str
    home: Path
    source: Path
    env: dict[str, str]
    catalog: Catalog
    defs: dg.Definitions
    instance: dg.DagsterInstance
    smtp: Any
    hook: Any

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=900)

    def tick(self, cursor: str | None) -> dg.SensorExecutionData:
        sensor = self.defs.get_sensor_def("platform_run_failures")
        return sensor.evaluate_tick(dg.build_sensor_context(instance=self.instance, cursor=cursor))


@pytest.fixture(scope="module")
def platform(warehouse: str, tmp_path_factory: pytest.TempPathFactory, module_smtp_sink: Any,
             module_webhook_sink: Any) -> Iterator[Platform]:
    """TST01 reading its deliveries from a folder named by a secret (so its path must be masked), failures notified
    on a webhook and by mail; no delivery folder yet."""
    from orchestration.definitions import build_definitions

    url = fresh_database(warehouse, "run_failures")
    home = tmp_path_factory.mktemp("run_failures") / "home"
    declarations = home.parent / "declarations"
    shutil.copytree(DEFAULT_FOLDER, declarations)
    systems = json.loads((declarations / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": "tst01_path"}
    (declarations / "systems.json").write_text(json.dumps(systems))
    (declarations / "actions.json").write_text(json.dumps({
        "smtp": {"host": "127.0.0.1", "port": module_smtp_sink.port, "tls": "none", "username": "platform",
                 "password": {"type": "secret", "key": "smtp_password"}, "sender": "platform@example.org"},
        "notifications": [{"type": "slack", "webhook_url": {"type": "secret", "key": "ops_hook"}},
                          {"type": "email", "to": ["ops@example.org"]}],
        "actions": []}))
    source = home / "sources" / "TST01"
    secrets = {"DATAPLATFORM_SECRET_TST01_PATH": str(source), "DATAPLATFORM_SECRET_SMTP_PASSWORD": PASSWORD,
               "DATAPLATFORM_SECRET_OPS_HOOK": module_webhook_sink.url}
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {**os.environ, **secrets, "DATAPLATFORM_DATABASE_URL": url, "DATAPLATFORM_HOME": str(home),
           "DAGSTER_HOME": str(dagster_home), "PYTHONPATH": str(ROOT), "DATAPLATFORM_METADATA_DIR": str(declarations)}
    # As a Dagster code server started by `dataplatform dev`: the sensor finds the warehouse.
    with platform_environment(url, {**secrets, "DATAPLATFORM_HOME": str(home)}):
        catalog = load_catalog(declarations)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            yield Platform(url, home, source, env, catalog, build_definitions(catalog), instance, module_smtp_sink,
                           module_webhook_sink)


def _last_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    return instance.get_run_records(limit=1)[0].dagster_run


def test_a_run_failing_before_any_batch_notifies_once_with_what_failed(platform: Platform) -> None:
    p = platform
    first = p.tick(None)  # the daemon's first tick: the sensor starts watching from here
    assert first.cursor and not p.hook.posts

    done = p.cli("run", "--system", "TST01")  # the delivery folder does not exist
    run = _last_run(p.instance)
    assert (done.returncode, run.status, run.job_name) == (1, dg.DagsterRunStatus.FAILURE, "run_tst01"), done
    # The audit tables agree: no batch (none was opened), and the run's failure, masked, with its step.
    assert rows(p.url, "select * from audit.system_run") == []
    message = ("landing_tst01: SourceError: source folder *** does not exist; create it or fix 'connection.path' in"
               " systems.json")
    recorded = rows(p.url, "select dagster_run_id, job_name, systems, steps, message from audit.run_failure")
    assert recorded == [{"dagster_run_id": run.run_id, "job_name": "run_tst01", "systems": ["TST01"],
                         "steps": ["landing_tst01"], "message": message}]
    assert f"  FAILED {message}" in done.stdout.splitlines(), done.stdout
    assert str(p.source) not in done.stdout + done.stderr
    status = p.cli("status")
    assert status.returncode == 0 and run.run_id in status.stdout and "source folder ***" in status.stdout, status
    scraped = metrics_text(p.url).decode()  # Prometheus sees it too (a view of audit.run_failure)
    assert 'dataplatform_run_failures_total{job="run_tst01",system="TST01"} 1.0' in scraped.splitlines(), scraped

    second = p.tick(first.cursor)  # the daemon's next tick sees the failed run (the CLI's, in the same instance)
    title = "dataplatform: run of system TST01 FAILED in step landing_tst01 (job run_tst01)"
    text = (f"{title}\nDagster run: {run.run_id}\nmessage: {message}\nto fix: correct the cause the message names,"
            " then `dataplatform run --system TST01`")
    assert [body["text"] for _, body in p.hook.posts] == [text]
    assert [(m["To"], m["Subject"]) for m in p.smtp.messages] == [("ops@example.org", title)]
    assert p.smtp.messages[0].get_content().replace("\r\n", "\n").strip() == text
    sent = rows(p.url, "select n.channel, n.status, n.subject, n.event_id, f.dagster_run_id from audit.notification n"
                       " join audit.run_failure f using (run_failure_id) order by n.notification_id")
    assert sent == [{"channel": c, "status": "sent", "subject": "failure", "event_id": None,
                     "dagster_run_id": run.run_id} for c in ("slack[0]", "email[1]")]

    again = p.tick(first.cursor)  # the same tick evaluated again (a daemon restarted before saving its cursor)
    later = p.tick(second.cursor)
    assert (len(p.hook.posts), len(p.smtp.messages)) == (1, 1)
    assert later.cursor == second.cursor and again.cursor == second.cursor
    assert len(rows(p.url, "select * from audit.notification")) == 2


def test_a_gate_failure_is_notified_by_its_event_and_not_again_as_a_run_failure(platform: Platform) -> None:
    from orchestration.actions import events_sensor

    p = platform
    start = p.tick(None)
    posts, mails = len(p.hook.posts), len(p.smtp.messages)
    day = next(simulate(days=1, seed=7))
    first = next(k for k, v in day.vehicles.items() if v["options"])
    record = copy.deepcopy(day.vehicles[first])
    record["options"][0]["price"] = "expensive"  # the gate fails vehicle_option
    day.vehicles = {**day.vehicles, first: record}
    write_day(day, p.source)

    done = p.cli("run", "--system", "TST01")
    run = _last_run(p.instance)
    assert (done.returncode, run.status) == (1, dg.DagsterRunStatus.FAILURE), done
    [batch] = rows(p.url, "select batch_id, status from audit.system_run")
    assert batch["status"] == "failed"

    p.tick(start.cursor)  # the run failure sensor: an event reports this failure, so nothing is sent or recorded
    assert (len(p.hook.posts), len(p.smtp.messages)) == (posts, mails)
    assert rows(p.url, "select 1 from audit.run_failure where dagster_run_id = %s", (run.run_id,)) == []

    # The events path notifies it, once: its sensor's request for the failed entity, run as the daemon would.
    job = p.defs.resolve_job_def("run_actions")
    with dg.DagsterInstance.ephemeral() as scratch:
        tick = events_sensor(p.catalog).evaluate_tick(dg.build_sensor_context(instance=scratch))
        requests = [r for r in tick.run_requests if r.run_key.endswith("-notify")]
        assert len(requests) == 1
        assert job.execute_in_process(run_config=requests[0].run_config, tags=requests[0].tags, instance=scratch,
                                      raise_on_error=False).success
    new = [body["text"] for _, body in p.hook.posts[posts:]]
    assert len(new) == 1 and new[0].startswith("dataplatform: entity TST01.vehicle_option FAILED in quality"), new
    assert len(p.smtp.messages) == mails + 1
    p.tick(start.cursor)  # looked at again: still one notification for the gate failure
    assert len(p.hook.posts) == posts + 1


DAEMON_TIMEOUT = 600  # a loaded build machine: the code server parses the dbt project, a run worker starts


@pytest.mark.slow
def test_a_declared_schedule_fires_under_the_daemon_and_its_failed_run_is_notified(
        warehouse: str, tmp_path: Path, webhook_sink: Any) -> None:
    """`dagster-daemon run` on the project's code: TST01's schedule (every minute) starts runs through the queue;
    the delivery folder is missing, so each fails before any batch, and the daemon's `platform_run_failures`
    sensor notifies each failed run once (a run that failed before the sensor's first tick, on a slow machine,
    is not its to notify: the next minute's is). Then the daemon stops on SIGTERM."""
    import signal
    import time

    url = fresh_database(warehouse, "run_failures_daemon")
    home, declarations = tmp_path / "home", tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, declarations)
    systems = json.loads((declarations / "systems.json").read_text())
    systems["systems"][0]["schedule"] = {"cron": "* * * * *", "timezone": "UTC", "enabled": True}
    (declarations / "systems.json").write_text(json.dumps(systems))
    (declarations / "actions.json").write_text(json.dumps({
        "notifications": [{"type": "slack", "webhook_url": {"type": "secret", "key": "ops_hook"}}], "actions": []}))
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAPLATFORM_", "DAGSTER_"))}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(dagster_home), PYTHONPATH=str(ROOT),
               DATAPLATFORM_METADATA_DIR=str(declarations), DATAPLATFORM_DATABASE_URL=url,
               DATAPLATFORM_SECRET_OPS_HOOK=webhook_sink.url, DATAPLATFORM_ENV_FILE=str(tmp_path / "absent.env"))
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m",
                                   "orchestration.definitions"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            deadline = time.monotonic() + DAEMON_TIMEOUT + 120

            def wait(what: str, found: Any) -> Any:
                while not (result := found()):
                    assert daemon.poll() is None, f"{what}: the daemon ended:\n{log.read_text()}"
                    assert time.monotonic() < deadline, f"{what}: not in time:\n{log.read_text()}"
                    time.sleep(3)
                return result

            def scheduled_runs() -> dict[str, dg.DagsterRun]:
                records = instance.get_run_records(
                    filters=dg.RunsFilter(tags={"dagster/schedule_name": "run_tst01_schedule"}))
                return {r.dagster_run.run_id: r.dagster_run for r in records}

            def notified_run_ids() -> list[str]:
                return [body["text"].splitlines()[1].removeprefix("Dagster run: ") for _, body in webhook_sink.posts]

            first = wait("a scheduled run's notification", notified_run_ids)[0]
            time.sleep(40)  # more ticks of the sensor: nothing more is sent for that run
            runs = scheduled_runs()
        run = runs[first]
        assert (run.status, run.job_name, run.tags["dataplatform/trigger"]) == (
            dg.DagsterRunStatus.FAILURE, "run_tst01", "schedule")
        assert run.tags["dataplatform/scheduled_for"].endswith(":00+00:00")  # a minute of the cron
        assert webhook_sink.posts[0][1]["text"].splitlines()[:2] == [
            "dataplatform: run of system TST01 FAILED in step landing_tst01 (job run_tst01)", f"Dagster run: {first}"]
        notified = notified_run_ids()
        assert len(notified) == len(set(notified)), notified  # one notification per failed run, never two
        assert set(notified) <= {i for i, r in runs.items() if r.status == dg.DagsterRunStatus.FAILURE}
        recorded = rows(url, "select dagster_run_id, steps from audit.run_failure")
        assert {"dagster_run_id": first, "steps": ["landing_tst01"]} in recorded
        assert set(notified) <= {r["dagster_run_id"] for r in recorded}
    finally:
        killed = False
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)  # as a service manager stops it
            try:
                daemon.wait(timeout=120)
            except subprocess.TimeoutExpired:
                killed = True
                daemon.kill()
                daemon.wait()
    assert not killed, f"the daemon did not stop within 120 s of SIGTERM:\n{log.read_text()}"
