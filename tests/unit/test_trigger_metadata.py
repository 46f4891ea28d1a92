"""A system's `schedule` and `webhook` in systems.json: what is accepted, and every refusal named by file, object
and field (cron expressions as Dagster reads them, IANA time zones, credentials only as secret references)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metadata.catalog import MetadataError, Problem, load_catalog
from metadata.models import Schedule, Webhook
from secret_store.env import EnvSecretStore

TOKEN = {"type": "secret", "key": "tst01/webhook_token"}


def _declare(folder: Path, **fields: Any) -> None:
    path = folder / "systems.json"
    data = json.loads(path.read_text())
    data["systems"][0].pop("schedule", None)
    data["systems"][0].update(fields)
    path.write_text(json.dumps(data))


def _problems(folder: Path, store: EnvSecretStore) -> list[Problem]:
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    return excinfo.value.problems


def test_the_bundled_test_system_declares_a_stopped_schedule(folder: Path, store: EnvSecretStore) -> None:
    system = load_catalog(folder, secrets=store).systems["TST01"]
    assert system.schedule == Schedule(cron="0 6 * * *", timezone="Europe/Amsterdam", enabled=False)
    assert system.webhook is None


def test_a_schedule_and_a_webhook_are_read(folder: Path, store: EnvSecretStore,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_TST01_WEBHOOK_TOKEN", "t0ken")
    _declare(folder, schedule={"cron": "@hourly", "timezone": "UTC", "enabled": True},
             webhook={"token": TOKEN, "min_interval_seconds": 60})
    system = load_catalog(folder, secrets=store).systems["TST01"]
    assert system.schedule == Schedule(cron="@hourly", timezone="UTC", enabled=True)
    assert system.webhook is not None
    assert (system.webhook.token.key, system.webhook.hmac_secret, system.webhook.min_interval_seconds,
            system.webhook.delivery_id_header) == ("tst01/webhook_token", None, 60, "X-Delivery-Id")


@pytest.mark.parametrize(("schedule", "field", "message"), [
    ({"cron": "0 25 * * *", "timezone": "UTC"}, "schedule.cron", "'0 25 * * *' is not a cron expression"),
    ({"cron": "0 6 * * * *", "timezone": "UTC"}, "schedule.cron", "'0 6 * * * *' has 6 fields; give five"),
    ({"cron": "0 0 30 2 *", "timezone": "UTC"}, "schedule.cron", "names a day February never has"),
    ({"cron": "0 6 * * *", "timezone": "Europe/Amsterdum"}, "schedule.timezone",
     "'Europe/Amsterdum' is not an IANA time zone; write e.g. 'Europe/Amsterdam' or 'UTC'"),
    ({"cron": "0 6 * * *"}, "schedule.timezone", "Field required"),
    ({"cron": "0 6 * * *", "timezone": "UTC", "enabeld": True}, "schedule.enabeld", "Extra inputs are not permitted"),
])
def test_a_bad_schedule_is_named_by_file_object_and_field(folder: Path, store: EnvSecretStore,
                                                          schedule: dict[str, Any], field: str, message: str) -> None:
    _declare(folder, schedule=schedule)
    [problem] = _problems(folder, store)
    assert (problem.file, problem.object, problem.field) == ("systems.json", "systems[0] (TST01)", field)
    assert message in problem.message


@pytest.mark.parametrize(("webhook", "field", "message"), [
    ({"token": "plain-text-token"}, "webhook.token",
     'must be a secret reference, {"type": "secret", "key": "..."}, not the value itself'),
    ({}, "webhook", "declare exactly one of 'token' (bearer) and 'hmac_secret' (signature of the body)"),
    ({"token": TOKEN, "hmac_secret": TOKEN}, "webhook", "declare exactly one of 'token'"),
    ({"token": TOKEN, "signature_header": "X-Sig"}, "webhook", "'signature_header' goes with 'hmac_secret'"),
    ({"hmac_secret": TOKEN, "signature_header": "X Sig: 1"}, "webhook.signature_header", "should match pattern"),
    ({"token": TOKEN, "min_interval_seconds": -1}, "webhook.min_interval_seconds", "greater than or equal to 0"),
])
def test_a_bad_webhook_is_named_by_file_object_and_field(folder: Path, store: EnvSecretStore,
                                                         webhook: dict[str, Any], field: str, message: str) -> None:
    _declare(folder, webhook=webhook)
    [problem] = _problems(folder, store)
    assert (problem.file, problem.object, problem.field) == ("systems.json", "systems[0] (TST01)", field)
    assert message in problem.message
    assert "plain-text-token" not in problem.message  # a credential written in by mistake is not repeated


def test_a_webhook_secret_that_is_not_set_is_a_problem(folder: Path, store: EnvSecretStore) -> None:
    _declare(folder, webhook={"hmac_secret": {"type": "secret", "key": "tst01/hook_key"}})
    [problem] = _problems(folder, store)
    assert (problem.file, problem.object, problem.field) == ("systems.json", "system TST01", "webhook.hmac_secret")
    assert "secret 'tst01/hook_key' is missing: set the environment variable DATAPLATFORM_SECRET_TST01_HOOK_KEY" \
        in problem.message


def test_webhook_defaults() -> None:
    hook = Webhook.model_validate({"hmac_secret": TOKEN})
    assert (hook.signature_header, hook.delivery_id_header, hook.min_interval_seconds) == \
        ("X-Signature-256", "X-Delivery-Id", 0)
