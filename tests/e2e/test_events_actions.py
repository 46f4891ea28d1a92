"""Events, actions, notifications, metrics and logs on a real pipeline: two `dataplatform run`s of TST01 (day 1
good, day 2 failing the quality gate for vehicle_option), then the `platform_events` sensor evaluated with
Dagster's test API and the `run_actions` runs it requests executed in-process against a real SMTP server and a
Slack-compatible webhook on loopback; `/metrics` scraped over HTTP; the second run's JSON log lines parsed."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import dagster as dg
import pytest
from warehouse_db import fresh_database, platform_environment, rows

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import DEFAULT_FOLDER, Catalog, load_catalog

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "smtp-Pa55-for-tests"  # tests/conftest.py SMTP_PASSWORD

pytestmark = pytest.mark.e2e


@dataclass
class Platform:
    url: str
    db: str
    home: Path
    metadata: Path
    env: dict[str, str]
    catalog: Catalog
    smtp: Any
    hook: Any
    outputs: list[tuple[int, str, str]]


def _actions_json(smtp_port: int) -> dict[str, Any]:
    gold = [{"system": "TST01", "layer": "gold"}]
    return {
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "tls": "none", "username": "platform",
                 "password": {"type": "secret", "key": "smtp_password"}, "sender": "platform@example.org"},
        "notifications": [{"type": "slack", "webhook_url": {"type": "secret", "key": "ops_hook"}},
                          {"type": "email", "to": ["ops@example.org"]}],
        "actions": [
            {"name": "refresh_gold", "description": "-", "type": "dbt_build", "select": "gold",
             "after_systems": ["TST01"]},
            {"name": "owner_fleet_model", "description": "-", "type": "python",
             "class": "actions.examples.owner_fleet_model:OwnerFleetModel", "after": gold,
             "settings": {"test_share": 0.25}},
            {"name": "batch_mail", "description": "-", "type": "email", "to": ["analyst@example.org"], "after": gold,
             "subject": "TST01 batch $batch_id reached $layer ($status)",
             "body": "delivery $source_ref\n$batch_summary"},
            # A held-out share of 500 rows out of a few dozen: scikit-learn refuses it, so this action always fails.
            {"name": "broken_model", "description": "-", "type": "python",
             "class": "actions.examples.owner_fleet_model:OwnerFleetModel",
             "after": [{"system": "TST01", "entity": "vehicle", "layer": "bronze"}], "settings": {"test_share": 500}},
        ],
    }


@pytest.fixture(scope="module")
def platform(warehouse: str, tmp_path_factory: pytest.TempPathFactory, module_smtp_sink: Any,
             module_webhook_sink: Any) -> Iterator[Platform]:
    """Day 1 and day 2 (gate-failing) of TST01 run by the CLI, the second with JSON logs; secrets (the source
    folder, the SMTP password, the webhook URL) from the environment."""
    db = "events_actions"
    url = fresh_database(warehouse, db)
    home = tmp_path_factory.mktemp("events") / "home"
    metadata = home.parent / "declarations"
    shutil.copytree(DEFAULT_FOLDER, metadata)
    systems = json.loads((metadata / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": "tst01_path"}
    (metadata / "systems.json").write_text(json.dumps(systems))
    (metadata / "actions.json").write_text(json.dumps(_actions_json(module_smtp_sink.port)))
    days = list(simulate(days=2, seed=5))
    first = next(k for k, v in days[1].vehicles.items() if v["options"])
    record = copy.deepcopy(days[1].vehicles[first])
    record["options"][0]["price"] = "expensive"  # the gate fails vehicle_option of day 2 only
    days[1].vehicles = {**days[1].vehicles, first: record}
    for day in days:
        write_day(day, home / "sources" / "TST01")
    secrets = {"DATAPLATFORM_SECRET_TST01_PATH": str(home / "sources" / "TST01"),
               "DATAPLATFORM_SECRET_SMTP_PASSWORD": PASSWORD, "DATAPLATFORM_SECRET_OPS_HOOK": module_webhook_sink.url}
    env = {**os.environ, **secrets, "DATAPLATFORM_DATABASE_URL": url, "DATAPLATFORM_HOME": str(home),
           "DAGSTER_HOME": str(home / "dagster"), "PYTHONPATH": str(ROOT), "DATAPLATFORM_METADATA_DIR": str(metadata)}
    outputs = []
    for log_format in ("text", "json"):
        done = subprocess.run([sys.executable, "-m", "cli.main", "run", "--system", "TST01"], cwd=ROOT,
                              env={**env, "DATAPLATFORM_LOG_FORMAT": log_format}, capture_output=True, text=True,
                              timeout=900)
        outputs.append((done.returncode, done.stdout, done.stderr))
    # As the CLI: this process's actions (and their dbt) work as the owner role.
    with platform_environment(url, {**secrets, "DATAPLATFORM_HOME": str(home)}):
        yield Platform(url, db, home, metadata, env, load_catalog(metadata), module_smtp_sink, module_webhook_sink,
                       outputs)


def _batches(p: Platform) -> list[tuple[int, str, str]]:
    found = rows(p.url, "select batch_id, status, dagster_run_id from audit.system_run order by system_run_id")
    return [(r["batch_id"], r["status"], r["dagster_run_id"]) for r in found]


def test_each_layer_and_entity_that_finishes_is_an_event(platform: Platform) -> None:
    p = platform
    assert [code for code, _, _ in p.outputs] == [0, 1], p.outputs
    (b1, s1, _), (b2, s2, _) = _batches(p)
    assert (s1, s2) == ("succeeded", "failed")
    found = rows(p.url, "select batch_id, kind, entity, layer, status from audit.event order by event_id")
    entities = ["owner", "vehicle", "vehicle_option"]

    def expected(batch: int, option_gate: str) -> list[tuple[Any, ...]]:
        later = "succeeded" if option_gate == "succeeded" else None  # a gate-stopped entity is skipped: no event
        layer = "succeeded" if option_gate == "succeeded" else "failed"
        result = [(batch, "entity_layer_processed", e, "landing", "succeeded") for e in ("owners", "vehicles")]
        result += [(batch, "system_layer_processed", None, "landing", "succeeded")]
        result += [(batch, "entity_layer_processed", e, "quality", option_gate if e == "vehicle_option" else
                    "succeeded") for e in entities]
        result += [(batch, "system_layer_processed", None, "quality", layer)]
        for stage in ("bronze", "silver"):
            result += [(batch, "entity_layer_processed", e, stage, "succeeded") for e in entities
                       if e != "vehicle_option" or later]
            result += [(batch, "system_layer_processed", None, stage, "succeeded")]
        return [*result, (batch, "system_layer_processed", None, "gold", "succeeded")]

    layers = ["landing", "quality", "bronze", "silver", "gold"]

    def order(event: tuple[Any, ...]) -> tuple[Any, ...]:  # dbt builds a layer's models in any order
        return event[0], layers.index(event[3]), event[1] == "system_layer_processed", event[2]

    assert sorted((tuple(r.values()) for r in found), key=order) == [*expected(b1, "succeeded"),
                                                                     *expected(b2, "failed")]
    # A layer's event follows its entities' (it is written when the layer is finished).
    assert rows(p.url, "select e.event_id from audit.event e join audit.event l on l.system_layer_run_id ="
                       " e.system_layer_run_id and l.kind = 'system_layer_processed'"
                       " where e.kind = 'entity_layer_processed' and e.event_id > l.event_id") == []

    # Each event carries its audit row's counts (entity) or their sums (system layer), and the run and batch.
    mismatched = rows(p.url, """
        select v.event_id from audit.event v join audit.entity_layer_run e using (entity_layer_run_id)
        where (v.records_in, v.inserted, v.updated, v.deleted, v.batch_id, v.dagster_run_id, v.status)
           is distinct from (e.records_in, e.inserted, e.updated, e.deleted, e.batch_id, e.dagster_run_id, e.status)
        union all
        select v.event_id from audit.event v join audit.system_layer_run l using (system_layer_run_id)
        cross join lateral (select coalesce(sum(x.records_in), 0) as i, coalesce(sum(x.inserted), 0) as n,
                                   count(*) filter (where x.status = 'failed') as f
                            from audit.entity_layer_run x where x.system_layer_run_id = l.system_layer_run_id) s
        where v.kind = 'system_layer_processed'
          and (v.records_in, v.inserted, v.entities_failed, v.status) is distinct from (s.i, s.n, s.f, l.status)""")
    assert mismatched == []
    failed = rows(p.url, "select entity, layer, records_in, message, entities_failed, entities_succeeded"
                         " from audit.event where status = 'failed' order by event_id")
    assert [(r["entity"], r["layer"], r["entities_failed"], r["entities_succeeded"]) for r in failed] == [
        ("vehicle_option", "quality", 0, 0), (None, "quality", 1, 2)]
    assert failed[0]["message"].startswith(f"quality gate failed for vehicle_option (batch {b2}), 1 expectation(s):")
    options = rows(p.url, "select records_in from audit.entity_layer_run where entity = 'vehicle_option'"
                          " and layer = 'quality' and batch_id = %s", (b2,))[0]["records_in"]
    assert failed[0]["records_in"] == options > 0


def _sensor_keys(result: Any) -> list[str]:
    return [r.run_key for r in result.run_requests]


def _expected_keys(p: Platform) -> list[str]:
    """From the event rows: what actions.json says follows each event, in event and declaration order."""
    keys = []
    for e in rows(p.url, "select event_id, kind, entity, layer, status from audit.event order by event_id"):
        if (e["kind"], e["layer"], e["status"]) == ("system_layer_processed", "gold", "succeeded"):
            keys += [f"event-{e['event_id']}-{a}" for a in ("refresh_gold", "owner_fleet_model", "batch_mail")]
        if (e["entity"], e["layer"], e["status"]) == ("vehicle", "bronze", "succeeded"):
            keys.append(f"event-{e['event_id']}-broken_model")
        if e["kind"] == "entity_layer_processed" and e["status"] == "failed":
            keys.append(f"event-{e['event_id']}-notify")  # the layer's own failed event is not notified again
    return keys


def test_the_sensor_requests_one_run_per_event_and_action(platform: Platform) -> None:
    from orchestration.actions import events_sensor

    p = platform
    sensor = events_sensor(p.catalog)
    with dg.DagsterInstance.ephemeral() as instance:
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=first.cursor))
        anew = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    expected = _expected_keys(p)
    assert len(expected) == 2 * 3 + 2 + 1
    assert _sensor_keys(first) == expected
    last_event = rows(p.url, "select max(event_id) as id from audit.event")[0]["id"]
    assert first.cursor == str(last_event)
    assert (_sensor_keys(again), again.cursor) == ([], str(last_event))  # nothing new: nothing requested
    assert _sensor_keys(anew) == expected  # from scratch: the same run keys, which the daemon starts only once
    notify = next(r for r in first.run_requests if r.run_key.endswith("-notify"))
    (b1, _, _), (b2, _, run2) = _batches(p)
    assert {k: v for k, v in notify.tags.items() if k.startswith("dataplatform/")} == {
        "dataplatform/event_id": notify.run_key.split("-")[1], "dataplatform/action": "notify",
        "dataplatform/system": "TST01", "dataplatform/entity": "vehicle_option", "dataplatform/layer": "quality",
        "dataplatform/batch_id": str(b2), "dataplatform/event_status": "failed", "dataplatform/job": "run_actions"}
    # Entity events show in the UI as observations of their asset, with the event's counts.
    observed = [(tuple(o.asset_key.path), o.metadata["batch_id"].value, o.metadata["status"].value)
                for o in first.asset_events]
    assert ("silver", "tst01_vehicle", b1, "succeeded") in [(*k, b, s) for k, b, s in observed]
    assert ("landing", "tst01_owners", b2, "succeeded") in [(*k, b, s) for k, b, s in observed]
    assert len(observed) == (2 + 3 + 3) + (2 + 2 + 2)  # landing, bronze, silver of day 1; day 2 without options


def _execute_all(p: Platform) -> dict[str, bool]:
    from orchestration.actions import events_sensor
    from orchestration.definitions import build_definitions

    job = build_definitions(p.catalog).resolve_job_def("run_actions")
    with dg.DagsterInstance.ephemeral() as instance:
        tick = events_sensor(p.catalog).evaluate_tick(dg.build_sensor_context(instance=instance))
        return {r.run_key: job.execute_in_process(run_config=r.run_config, tags=r.tags, instance=instance,
                                                  raise_on_error=False).success for r in tick.run_requests}


@pytest.fixture(scope="module")
def executed(platform: Platform) -> tuple[dict[str, bool], dict[str, bool]]:
    """Every requested run executed, then all of them again (a re-execution, or the daemon's retry)."""
    return _execute_all(platform), _execute_all(platform)


def test_actions_run_once_per_event_and_a_failing_one_is_recorded_and_notified(
        platform: Platform, executed: tuple[dict[str, bool], dict[str, bool]]) -> None:
    p = platform
    first, second = executed
    assert {k: ok for k, ok in first.items()} == {k: not k.endswith("broken_model") for k in _expected_keys(p)}
    assert second == first  # the broken one fails again when re-executed; the others do nothing the second time
    (b1, s1, _), (b2, s2, _) = _batches(p)
    assert (s1, s2) == ("succeeded", "failed")  # the data runs are as they were: an action never changes them
    runs = rows(p.url, "select v.batch_id, a.action, a.action_type, a.status, a.message from audit.action_run a"
                       " join audit.event v using (event_id) order by a.event_id, a.action_run_id")
    assert [(r["batch_id"], r["action"], r["action_type"], r["status"]) for r in runs] == [
        (b1, "broken_model", "python", "failed"),
        (b1, "refresh_gold", "dbt_build", "succeeded"), (b1, "owner_fleet_model", "python", "succeeded"),
        (b1, "batch_mail", "email", "succeeded"),
        (b2, "broken_model", "python", "failed"),
        (b2, "refresh_gold", "dbt_build", "succeeded"), (b2, "owner_fleet_model", "python", "succeeded"),
        (b2, "batch_mail", "email", "succeeded")]
    assert runs[0]["message"] == ("InvalidParameterError: The 'test_size' parameter of train_test_split must be a"
                                  " float in the range (0.0, 1.0), an int in the range [1, inf) or None. Got 500.0"
                                  " instead.")
    assert runs[1]["message"] == "dbt build --select gold"


def test_a_gate_failure_notifies_once_on_each_channel(platform: Platform,
                                                      executed: tuple[dict[str, bool], dict[str, bool]]) -> None:
    p = platform
    (_, _, _), (b2, _, run2) = _batches(p)
    sent = rows(p.url, "select v.entity, v.layer, v.batch_id, n.subject, n.channel, n.status, n.title"
                       " from audit.notification n join audit.event v using (event_id) order by n.notification_id")
    failure = [r for r in sent if r["subject"] == "failure"]
    title = f"dataplatform: entity TST01.vehicle_option FAILED in quality (batch {b2})"
    assert [(r["entity"], r["batch_id"], r["channel"], r["status"], r["title"]) for r in failure] == [
        ("vehicle_option", b2, "slack[0]", "sent", title), ("vehicle_option", b2, "email[1]", "sent", title)]
    action_failures = [(r["subject"], r["channel"], r["status"]) for r in sent if r["subject"] != "failure"]
    assert action_failures == [("action broken_model", c, "sent") for _ in (1, 2) for c in ("slack[0]", "email[1]")]

    # The webhook got each once (two runs of everything), as Slack's JSON: {"text": ...}.
    texts = [body["text"] for path, body in p.hook.posts]
    assert path_ok(p.hook.posts)
    gate = [t for t in texts if t.startswith(title)]
    message = rows(p.url, "select message from audit.event where entity = 'vehicle_option' and status = 'failed'")
    assert gate == [f"{title}\nbatch: {b2} (Dagster run {run2}, event {_failure_event(p)})\n"
                    f"message: {message[0]['message']}\nto fix: fix the delivery and land it again with `dataplatform"
                    f" run --force --batch {b2}` (it is then built again), or skip it for good with `dataplatform skip"
                    f" --entity vehicle_option --batch {b2}`"]
    assert len([t for t in texts if t.startswith("dataplatform: action broken_model FAILED")]) == 2
    assert len(texts) == 3

    mails = {(m["To"], m["Subject"]) for m in p.smtp.messages}
    assert len(p.smtp.messages) == 3 + 2  # the operator: 1 failure + 2 action failures; the analyst: 2 batch mails
    assert ("ops@example.org", title) in mails
    ops = next(m for m in p.smtp.messages if m["Subject"] == title)
    assert ops.get_content().replace("\r\n", "\n").strip() == gate[0]


def path_ok(posts: list[tuple[str, Any]]) -> bool:
    return all(path == "/hooks/T000/B000/XXXXsecretpath" for path, _ in posts)


def _failure_event(p: Platform) -> int:
    return rows(p.url, "select event_id from audit.event where entity = 'vehicle_option' and status = 'failed'")[0][
        "event_id"]


def test_the_email_action_renders_the_event_and_its_batch(platform: Platform,
                                                          executed: tuple[dict[str, bool], dict[str, bool]]) -> None:
    p = platform
    (b1, _, run1), _ = _batches(p)
    mail = next(m for m in p.smtp.messages if m["Subject"] == f"TST01 batch {b1} reached gold (succeeded)")
    assert (mail["From"], mail["To"]) == ("platform@example.org", "analyst@example.org")
    entity_rows = rows(p.url, "select layer, entity, status, records_in, inserted, updated, deleted"
                              " from audit.entity_layer_run where batch_id = %s and dagster_run_id = %s"
                              " order by entity_layer_run_id", (b1, run1))
    lines = [f"{r['layer']:<8} {r['entity']:<20} {r['status']:<10} in={r['records_in']} +{r['inserted']}"
             f" ~{r['updated']} -{r['deleted']}" for r in entity_rows]
    assert mail.get_content().replace("\r\n", "\n") == "delivery 2026-01-01\n" + "\n".join(lines) + "\n"


Executed = tuple[dict[str, bool], dict[str, bool]]


def test_the_model_action_trains_on_gold_and_records_its_batch(platform: Platform, executed: Executed) -> None:
    import joblib

    p = platform
    (b1, _, _), (b2, _, _) = _batches(p)
    owners = rows(p.url, "select city, vehicles_acquired_last_30_days as recent, vehicles_owned"
                         " from gold.owner_vehicles order by owner_id")
    trained = rows(p.url, "select action, batch_id, model, model_path, rows_trained, metrics"
                          " from audit.model_training order by model_training_id")
    assert [(t["action"], t["batch_id"], t["model"], t["rows_trained"]) for t in trained] == [
        ("owner_fleet_model", b1, "owner_fleet_model", len(owners)),
        ("owner_fleet_model", b2, "owner_fleet_model", len(owners))]
    metrics = trained[1]["metrics"]
    assert set(metrics) == {"r2_test", "mae_test", "r2_train", "mae_train", "rows_train", "rows_test"}
    assert metrics["rows_train"] + metrics["rows_test"] == len(owners) and metrics["rows_test"] == 5
    path = Path(trained[1]["model_path"])
    assert path == p.home / "actions" / "owner_fleet_model" / f"owner_fleet_model-batch{b2}.joblib"
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    model = joblib.load(path)
    predicted = model.predict([[r["city"], r["recent"]] for r in owners])
    # The metrics it recorded are the model's own: its training error recomputed from the file's model.
    assert len(predicted) == len(owners) and all(value == value for value in predicted)


def test_metrics_scraped_over_http_equal_the_audit_tables(platform: Platform,
                                                          executed: tuple[dict[str, bool], dict[str, bool]]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from observability.metrics import metrics_wsgi_app

    p = platform

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    with make_server("127.0.0.1", 0, metrics_wsgi_app(p.url), handler_class=Quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=30) as response:
                text = response.read().decode()
        finally:
            server.shutdown()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    for r in rows(p.url, "select system_id, entity, layer, sum(records_in) as i, sum(inserted) as n,"
                         " sum(updated) as u, sum(deleted) as d, count(*) filter (where status = 'failed') as f"
                         " from audit.entity_layer_run group by 1, 2, 3"):
        labels = {"system": r["system_id"], "entity": r["entity"], "layer": r["layer"]}
        assert sample("dataplatform_records_in_total", **labels) == r["i"]
        assert sample("dataplatform_rows_inserted_total", **labels) == r["n"]
        assert sample("dataplatform_rows_updated_total", **labels) == r["u"]
        assert sample("dataplatform_rows_deleted_total", **labels) == r["d"]
        assert sample("dataplatform_entity_failures_total", **labels) == r["f"]
    assert sample("dataplatform_entity_failures_total", system="TST01", entity="vehicle_option", layer="quality") == 1
    landed = rows(p.url, "select sum(inserted) as n from audit.entity_layer_run where layer = 'landing'"
                         " and entity = 'vehicles'")[0]["n"]
    assert sample("dataplatform_rows_inserted_total", system="TST01", entity="vehicles", layer="landing") == landed
    runs = rows(p.url, "select status, count(*) as n, sum(extract(epoch from ended_at - started_at)) as s,"
                       " extract(epoch from max(ended_at)) as last from audit.system_run group by status")
    by_status = {r["status"]: r for r in runs}
    assert sample("dataplatform_runs_total", system="TST01", status="failed") == 1
    assert sample("dataplatform_runs_total", system="TST01", status="succeeded") == 1
    assert sample("dataplatform_run_duration_seconds_total", system="TST01", status="failed") == pytest.approx(
        float(by_status["failed"]["s"]))
    assert sample("dataplatform_last_successful_batch_timestamp_seconds", system="TST01") == pytest.approx(
        float(by_status["succeeded"]["last"]))
    layer = rows(p.url, "select count(*) as n, sum(extract(epoch from l.ended_at - l.started_at)) as s"
                        " from audit.system_layer_run l where layer = 'silver' and status = 'succeeded'")[0]
    assert sample("dataplatform_layer_runs_total", system="TST01", layer="silver", status="succeeded") == layer["n"]
    assert sample("dataplatform_layer_duration_seconds_total", system="TST01", layer="silver",
                  status="succeeded") == pytest.approx(float(layer["s"]))
    assert sample("dataplatform_action_runs_total", action="broken_model", status="failed") == 2
    assert sample("dataplatform_notifications_total", channel="slack[0]", status="sent") == 3


def test_json_log_lines_carry_the_run_and_batch_and_no_secret(platform: Platform) -> None:
    p = platform
    _, (b2, _, run2) = _batches(p)
    code, out, err = p.outputs[1]
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]  # every line of stdout is JSON
    started = next(i for i, r in enumerate(lines) if r["message"].startswith("running job run_tst01"))
    after = lines[started + 1:]
    assert after and all(r["run_id"] == run2 for r in after), after
    assert all(r["batch_id"] == str(b2) for r in after)
    assert any(r["message"].strip() == f"TST01: batch {b2} = delivery 2026-01-02 (batch timestamp 2026-01-02 00:00"
               " UTC)" for r in lines)
    logged = [json.loads(line) for line in err.splitlines() if line.startswith('{"time"')]
    assert any(r["logger"] == "dlt" for r in logged), logged  # dlt's schema warnings about the landed arrow tables
    assert any(r["logger"] == "dataplatform.cli" and "superuser" in r["message"] for r in logged), logged
    assert not [line for line in err.splitlines() if "|[WARNING]|" in line or line.startswith("warning:")]
    dagster = [r for r in logged if r["logger"] == "dagster"]
    assert dagster and all(r["run_id"] == run2 for r in dagster)
    # A step's lines name it (run-level lines have none); which step fails the run is the other tests' concern.
    assert any(r.get("step") for r in dagster), [(r["level"], r.get("step"), r["message"][:100]) for r in dagster]
    secrets = [str(p.home / "sources" / "TST01"), PASSWORD, p.hook.url]
    for _, out_i, err_i in p.outputs:
        assert not [s for s in secrets if s in out_i or s in err_i]
