"""The HTTP service (`dataplatform serve`) on loopback, called with a real HTTP client: webhooks (bearer token and
HMAC signature; 401, 403, 404, 429; a repeated delivery id), the operator's API, and the `run_requests` sensor that
turns each recorded request into one run, evaluated without a daemon with Dagster's test APIs. The last test
follows a webhook call to a real run of the test system that lands and builds its delivery."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import uvicorn
from warehouse_db import rows

from api.app import create_app
from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import Catalog, load_catalog
from metadata.models import SecretRef, System, Webhook
from orchestration.resources import WarehouseResource
from orchestration.triggers import DELIVERY_TAG, REQUEST_TAG, RUN_REQUESTS_SENSOR, TRIGGER_TAG
from secret_store.env import EnvSecretStore

pytestmark = pytest.mark.e2e

TOKEN = "tok-7f3a9c1e-webhook"  # never in an answer
HMAC_KEY = "hmac-key-51d0e2"
API_TOKEN = "operator-token-c0ffee"
SENSOR_TAG = "dagster/sensor_name"  # Dagster's own tag on a sensor's runs


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under uvicorn in a thread, on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _with(system: System, **update: Any) -> System:
    return system.model_copy(update=update)


def _catalog() -> Catalog:
    """The bundled test system with a bearer-token webhook, plus systems that exist for the service's checks:
    one signing with HMAC, one with a minimum interval, one without a webhook."""
    catalog = load_catalog(secrets=EnvSecretStore(env_file=Path("/nonexistent")))
    tst = catalog.systems["TST01"]
    catalog.systems = {
        "TST01": _with(tst, webhook=Webhook(token=SecretRef(type="secret", key="tst01/webhook_token"))),
        "HMC01": _with(tst, id="HMC01", webhook=Webhook(hmac_secret=SecretRef(type="secret", key="hmc01/hook_key"),
                                                         signature_header="X-Hub-Signature-256",
                                                         delivery_id_header="X-GitHub-Delivery")),
        "SLO01": _with(tst, id="SLO01", webhook=Webhook(token=SecretRef(type="secret", key="tst01/webhook_token"),
                                                         min_interval_seconds=3600)),
        "NOH01": _with(tst, id="NOH01", webhook=None),
    }
    return catalog


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EnvSecretStore:
    monkeypatch.setenv("DATAPLATFORM_SECRET_TST01_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("DATAPLATFORM_SECRET_HMC01_HOOK_KEY", HMAC_KEY)
    monkeypatch.setenv("DATAPLATFORM_SECRET_API_TOKEN", API_TOKEN)
    return EnvSecretStore(env_file=tmp_path / "absent.env")


@pytest.fixture
def service(warehouse: str, secrets: EnvSecretStore) -> Iterator[str]:
    with serving(create_app(_catalog(), url=warehouse, secrets=secrets)) as base:
        yield base


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_no_secret(response: httpx.Response) -> None:
    for value in (TOKEN, HMAC_KEY, API_TOKEN):
        assert value not in response.text


def test_a_webhook_with_its_token_is_recorded_and_answered_202(service: str, warehouse: str) -> None:
    body = b'{"files": ["2026-01-01"]}'
    response = httpx.post(f"{service}/hooks/TST01", content=body,
                          headers={**_bearer(TOKEN), "X-Delivery-Id": "bearer-delivery-1"})
    assert response.status_code == 202, response.text
    answer = response.json()
    request_id = answer["request"]["request_id"]
    assert answer["request"] | {"received_at": None} == {
        "request_id": request_id, "system_id": "TST01", "trigger": "webhook", "delivery_id": "bearer-delivery-1",
        "received_at": None, "body_sha256": hashlib.sha256(body).hexdigest(), "body_bytes": len(body)}
    assert (answer["repeated"], answer["run"], answer["status_url"]) == (False, None, f"/requests/{request_id}")
    assert response.headers["location"] == f"/requests/{request_id}"
    assert rows(warehouse, "select system_id, trigger, delivery_id from audit.run_request where request_id = %s",
                (request_id,)) == [{"system_id": "TST01", "trigger": "webhook", "delivery_id": "bearer-delivery-1"}]
    _assert_no_secret(response)


def test_webhook_credentials_missing_401_wrong_403(service: str, warehouse: str) -> None:
    before = rows(warehouse, "select count(*) as n from audit.run_request")[0]["n"]
    missing = httpx.post(f"{service}/hooks/TST01", content=b"{}")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert missing.json() == {"detail": "send the token as 'Authorization: Bearer <token>'"}
    assert httpx.post(f"{service}/hooks/TST01", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    wrong = httpx.post(f"{service}/hooks/TST01", content=b"{}", headers=_bearer(TOKEN + "x"))
    assert (wrong.status_code, wrong.json()) == (403, {"detail": "the token is not valid"})
    _assert_no_secret(wrong)
    assert rows(warehouse, "select count(*) as n from audit.run_request")[0]["n"] == before  # nothing recorded


def test_an_hmac_signed_webhook_is_checked_against_the_body(service: str) -> None:
    body = json.dumps({"event": "delivery", "at": "2026-01-02"}).encode()
    good = "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()
    accepted = httpx.post(f"{service}/hooks/HMC01", content=body,
                          headers={"X-Hub-Signature-256": good, "X-GitHub-Delivery": "gh-1"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["request"]["delivery_id"] == "gh-1"
    # The same signature over another body, a signature with another key, and none at all.
    tampered = httpx.post(f"{service}/hooks/HMC01", content=body + b" ", headers={"X-Hub-Signature-256": good})
    assert (tampered.status_code, tampered.json()) == (
        403, {"detail": "the signature in X-Hub-Signature-256 does not match the body"})
    other_key = hmac.new(b"another key", body, hashlib.sha256).hexdigest()
    assert httpx.post(f"{service}/hooks/HMC01", content=body,
                      headers={"X-Hub-Signature-256": other_key}).status_code == 403
    unsigned = httpx.post(f"{service}/hooks/HMC01", content=body)
    assert (unsigned.status_code, unsigned.json()) == (
        401, {"detail": "send the HMAC-SHA256 of the body, hex, in the header X-Hub-Signature-256"})
    # A bearer token is not what this system takes.
    assert httpx.post(f"{service}/hooks/HMC01", content=body, headers=_bearer(TOKEN)).status_code == 401


def test_a_body_over_the_limit_is_refused_413(service: str) -> None:
    from api.app import MAX_BODY_BYTES

    refused = httpx.post(f"{service}/hooks/TST01", content=b"x" * (MAX_BODY_BYTES + 1), headers=_bearer(TOKEN))
    assert (refused.status_code, refused.json()["detail"]) == (
        413, "the body is larger than 1048576 bytes; a webhook call says that data is ready, it does not carry it")


def test_unknown_system_or_no_webhook_is_404(service: str) -> None:
    unknown = httpx.post(f"{service}/hooks/XXX99", headers=_bearer(TOKEN))
    assert (unknown.status_code, unknown.json()["detail"]) == (
        404, "unknown system 'XXX99'; declared: TST01, HMC01, SLO01, NOH01")
    none = httpx.post(f"{service}/hooks/NOH01", headers=_bearer(TOKEN))
    assert (none.status_code, none.json()["detail"]) == (
        404, "system NOH01 takes no webhook calls: declare 'webhook' on it in systems.json")


def test_a_system_called_before_its_minimum_interval_gets_429(service: str) -> None:
    first = httpx.post(f"{service}/hooks/SLO01", headers={**_bearer(TOKEN), "X-Delivery-Id": "slow-1"})
    assert first.status_code == 202, first.text
    second = httpx.post(f"{service}/hooks/SLO01", headers={**_bearer(TOKEN), "X-Delivery-Id": "slow-2"})
    assert second.status_code == 429
    assert 3590 <= int(second.headers["retry-after"]) <= 3600
    assert second.json()["detail"].startswith("SLO01 was called less than its minimum interval ago: retry in ")
    # The first delivery sent again is answered (it starts nothing), not refused.
    again = httpx.post(f"{service}/hooks/SLO01", headers={**_bearer(TOKEN), "X-Delivery-Id": "slow-1"})
    assert (again.status_code, again.json()["request"]) == (200, first.json()["request"])


def test_a_repeated_delivery_id_starts_nothing_new_even_after_a_restart(warehouse: str,
                                                                         secrets: EnvSecretStore) -> None:
    headers = {**_bearer(TOKEN), "X-Delivery-Id": "restart-delivery"}
    with serving(create_app(_catalog(), url=warehouse, secrets=secrets)) as base:
        first = httpx.post(f"{base}/hooks/TST01", content=b"a", headers=headers)
        repeated = httpx.post(f"{base}/hooks/TST01", content=b"a", headers=headers)
    with serving(create_app(_catalog(), url=warehouse, secrets=secrets)) as restarted:  # a new process's state
        after_restart = httpx.post(f"{restarted}/hooks/TST01", content=b"a", headers=headers)
    assert first.status_code == 202 and first.json()["repeated"] is False
    for response in (repeated, after_restart):
        assert (response.status_code, response.json()["repeated"], response.json()["request"]) == \
            (200, True, first.json()["request"])
    assert rows(warehouse, "select count(*) as n from audit.run_request where delivery_id = 'restart-delivery'") \
        == [{"n": 1}]
    # Without a delivery id every call is a delivery of its own.
    with serving(create_app(_catalog(), url=warehouse, secrets=secrets)) as base:
        a = httpx.post(f"{base}/hooks/TST01", headers=_bearer(TOKEN)).json()["request"]
        b = httpx.post(f"{base}/hooks/TST01", headers=_bearer(TOKEN)).json()["request"]
    assert a["request_id"] != b["request_id"] and a["delivery_id"].startswith("generated-")


def test_the_operators_api_needs_its_token(service: str, warehouse: str, secrets: EnvSecretStore,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for method, path in (("GET", "/systems"), ("GET", "/runs"), ("POST", "/systems/TST01/runs"),
                         ("GET", "/requests/1")):
        assert httpx.request(method, f"{service}{path}").status_code == 401
        assert httpx.request(method, f"{service}{path}", headers=_bearer("nope")).status_code == 403
        # A webhook's token is not the operator's.
        assert httpx.request(method, f"{service}{path}", headers=_bearer(TOKEN)).status_code == 403
    monkeypatch.delenv("DATAPLATFORM_SECRET_API_TOKEN")
    off = httpx.get(f"{service}/systems", headers=_bearer(API_TOKEN))
    assert (off.status_code, off.json()["detail"]) == (503, "the operator's API is off: set the environment variable"
                                                        " DATAPLATFORM_SECRET_API_TOKEN (or put it in .env)")


def test_the_operators_api_lists_systems_and_starts_runs_without_showing_a_secret(service: str) -> None:
    systems = httpx.get(f"{service}/systems", headers=_bearer(API_TOKEN))
    assert systems.status_code == 200
    _assert_no_secret(systems)
    by_id = {s["id"]: s for s in systems.json()}
    assert list(by_id) == ["TST01", "HMC01", "SLO01", "NOH01"]
    assert by_id["TST01"]["schedule"] == {"cron": "0 6 * * *", "timezone": "Europe/Amsterdam", "enabled": False}
    assert by_id["TST01"]["webhook"] == {"path": "/hooks/TST01", "auth": "bearer token",
                                         "delivery_id_header": "X-Delivery-Id", "min_interval_seconds": 0}
    assert by_id["HMC01"]["webhook"]["auth"] == "HMAC-SHA256 signature in X-Hub-Signature-256"
    assert by_id["NOH01"]["webhook"] is None
    assert "connection" not in by_id["TST01"] and "tst01/webhook_token" not in systems.text
    assert isinstance(by_id["TST01"]["last_batches"], list)

    started = httpx.post(f"{service}/systems/TST01/runs", headers={**_bearer(API_TOKEN), "X-Delivery-Id": "op-1"})
    assert started.status_code == 202, started.text
    request = started.json()["request"]
    assert (request["system_id"], request["trigger"], request["delivery_id"]) == ("TST01", "api", "op-1")
    again = httpx.post(f"{service}/systems/TST01/runs", headers={**_bearer(API_TOKEN), "X-Delivery-Id": "op-1"})
    assert (again.status_code, again.json()["request"]) == (200, request)
    status = httpx.get(f"{service}/requests/{request['request_id']}", headers=_bearer(API_TOKEN))
    assert status.json() == {"request": request, "run": None}  # no daemon here: the sensor has not run yet
    assert httpx.post(f"{service}/systems/XXX99/runs", headers=_bearer(API_TOKEN)).status_code == 404
    assert httpx.get(f"{service}/requests/999999999", headers=_bearer(API_TOKEN)).status_code == 404


def test_the_openapi_page_is_served(service: str) -> None:
    docs = httpx.get(f"{service}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = httpx.get(f"{service}/openapi.json").json()["paths"]
    assert {"/hooks/{system_id}", "/systems", "/runs", "/systems/{system_id}/runs", "/requests/{request_id}"} <= \
        set(paths)


def _sensor_requests(defs: dg.Definitions, instance: dg.DagsterInstance,
                     cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    """Evaluate the `run_requests` sensor once, without a daemon, as the daemon would."""
    sensor = defs.resolve_sensor_def(RUN_REQUESTS_SENSOR)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                      resources={"warehouse": WarehouseResource()})
    result = sensor.evaluate_tick(context)
    return list(result.run_requests or []), result.cursor


def test_the_sensor_requests_one_run_per_recorded_request(service: str, warehouse: str) -> None:
    from orchestration.definitions import platform_definitions

    defs = platform_definitions()
    last = rows(warehouse, "select request_id, received_at from audit.run_request order by request_id desc limit 1")
    cursor = json.dumps({"request_id": last[0]["request_id"], "received_at": last[0]["received_at"].isoformat()}) \
        if last else None  # what the sensor handed on last, if anything
    hook = httpx.post(f"{service}/hooks/TST01", headers={**_bearer(TOKEN), "X-Delivery-Id": "sensor-1"}).json()
    api = httpx.post(f"{service}/systems/TST01/runs", headers=_bearer(API_TOKEN)).json()
    with dg.instance_for_test() as instance:
        requests, cursor = _sensor_requests(defs, instance, cursor)
        again, cursor_after = _sensor_requests(defs, instance, cursor)
    ids = [hook["request"]["request_id"], api["request"]["request_id"]]
    keys = [f"run_request:{r['request']['request_id']}@{r['request']['received_at']}" for r in (hook, api)]
    assert [(r.run_key, r.job_name, r.tags) for r in requests] == [
        (keys[0], "run_tst01", {TRIGGER_TAG: "webhook", REQUEST_TAG: str(ids[0]), DELIVERY_TAG: "sensor-1",
                                SENSOR_TAG: RUN_REQUESTS_SENSOR}),
        (keys[1], "run_tst01", {TRIGGER_TAG: "api", REQUEST_TAG: str(ids[1]),
                                DELIVERY_TAG: api["request"]["delivery_id"], SENSOR_TAG: RUN_REQUESTS_SENSOR}),
    ]
    assert json.loads(cursor) == {"request_id": ids[1], "received_at": api["request"]["received_at"]}
    assert (again, cursor_after) == ([], cursor)  # handed on once: the next tick asks for nothing


def test_a_cursor_from_another_warehouse_starts_from_the_first_request(service: str, warehouse: str) -> None:
    """Ids start at 1 again in a new warehouse: a cursor that names a request this one does not hold as it was
    hands on every request from the first, under run keys no earlier run used."""
    from orchestration.definitions import platform_definitions

    httpx.post(f"{service}/hooks/TST01", headers={**_bearer(TOKEN), "X-Delivery-Id": "cursor-1"})
    first = rows(warehouse, "select request_id, received_at from audit.run_request where system_id = 'TST01'"
                             " order by request_id limit 1")[0]
    stale = json.dumps({"request_id": first["request_id"], "received_at": "2001-01-01T00:00:00+00:00"})
    with dg.instance_for_test() as instance:
        requests, _ = _sensor_requests(platform_definitions(), instance, stale)
    assert requests[0].run_key == f"run_request:{first['request_id']}@{first['received_at'].isoformat()}"
    # Every request of TST01 (the other systems of these tests have no job in the bundled definitions).
    tst01 = rows(warehouse, "select request_id from audit.run_request where system_id = 'TST01' and request_id <= %s"
                             " order by request_id", (first["request_id"] + 99,))
    assert [r.tags[REQUEST_TAG] for r in requests] == [str(r["request_id"]) for r in tst01]


def test_a_webhook_call_leads_to_a_run_that_lands_and_builds_the_delivery(
        fresh_warehouse: str, secrets: EnvSecretStore, platform_home: Path) -> None:
    """The newcomer's path without a daemon: the source calls the webhook; the sensor, evaluated here, asks for
    one run of TST01's job; that run (executed in-process, tagged as the daemon tags it) lands the delivery,
    passes the gate and builds bronze, silver and gold. The service then answers with that run."""
    from orchestration.definitions import platform_definitions
    from orchestration.instance import dagster_instance
    from warehouse.embedded import state_dir

    day = next(simulate(days=1, seed=13))
    write_day(day, state_dir() / "sources" / "TST01")
    defs = platform_definitions()
    with serving(create_app(_catalog(), url=fresh_warehouse, secrets=secrets)) as base:
        call = httpx.post(f"{base}/hooks/TST01", content=b'{"ready": true}',
                          headers={**_bearer(TOKEN), "X-Delivery-Id": "e2e-delivery"})
        assert call.status_code == 202, call.text
        request_id = call.json()["request"]["request_id"]

        instance = dagster_instance()
        [request], _ = _sensor_requests(defs, instance, None)
        assert request.run_key == f"run_request:{request_id}@{call.json()['request']['received_at']}"
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, tags={**request.tags, "dagster/run_key": request.run_key},
            run_config=request.run_config, raise_on_error=False)
        assert result.success

        [record] = instance.get_run_records(filters=dg.RunsFilter(tags={REQUEST_TAG: str(request_id)}))
        assert (record.dagster_run.run_id, record.dagster_run.job_name) == (result.run_id, "run_tst01")
        assert {k: record.dagster_run.tags[k] for k in (TRIGGER_TAG, DELIVERY_TAG)} == \
            {TRIGGER_TAG: "webhook", DELIVERY_TAG: "e2e-delivery"}

        repeated = httpx.post(f"{base}/hooks/TST01", content=b'{"ready": true}',
                              headers={**_bearer(TOKEN), "X-Delivery-Id": "e2e-delivery"})
        assert (repeated.status_code, repeated.json()["run"]["run_id"], repeated.json()["run"]["status"]) == \
            (200, result.run_id, "SUCCESS")
        runs = httpx.get(f"{base}/runs", headers=_bearer(API_TOKEN)).json()
        mine = next(r for r in runs if r["run_id"] == result.run_id)
        assert mine["tags"][TRIGGER_TAG] == "webhook"
        assert [(b["system_id"], b["source_ref"], b["status"]) for b in mine["batches"]] == \
            [("TST01", day.date.isoformat(), "succeeded")]

    # What the delivery held is in every layer, by value.
    owners, vehicles = day.owners, day.vehicles
    landed = rows(fresh_warehouse, "select (payload->>'owner_id')::int as owner_id, _run_id from landing.tst01_owners")
    assert sorted(r["owner_id"] for r in landed) == sorted(owners)
    assert {r["_run_id"] for r in landed} == {result.run_id}
    silver = rows(fresh_warehouse, "select owner_id, name, email, address_city from silver.tst01_owner"
                                    " where valid_to is null")
    assert {r["owner_id"]: (r["name"], r["email"], r["address_city"]) for r in silver} == \
        {k: (o["name"], o["email"], o["address"]["city"]) for k, o in owners.items()}
    gold = rows(fresh_warehouse, "select owner_id, vehicles_owned from gold.owner_vehicles")
    owned = {k: sum(1 for v in vehicles.values() if v["owner"]["owner_id"] == k) for k in owners}
    assert {r["owner_id"]: r["vehicles_owned"] for r in gold} == owned
