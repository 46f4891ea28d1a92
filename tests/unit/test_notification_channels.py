"""The two ways the platform talks to people, against real servers on loopback: email (an aiosmtpd SMTP server
the test starts, with a login) and a Slack-compatible incoming webhook (an HTTP server the test starts)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest

from actions.base import ActionContext
from actions.mail import EmailRunner
from actions.notify import failure_message
from actions.slack import post_webhook
from audit.events import Event
from metadata.catalog import load_catalog
from metadata.models import EmailAction, SlackChannel, SmtpSettings
from secret_store.env import EnvSecretStore

PASSWORD = "smtp-Pa55-for-tests"  # tests/conftest.py SMTP_PASSWORD


def event(**changes: Any) -> Event:
    values: dict[str, Any] = dict(
        event_id=41, kind="entity_layer_processed", status="failed", system_id="TST01", entity="vehicle_option",
        layer="quality", batch_id=7, system_run_id=9, dagster_run_id="run-abc", records_in=120, inserted=0,
        updated=0, deleted=0, entities_succeeded=0, entities_failed=0, entities_skipped=0,
        message="quality gate failed for vehicle_option (batch 7), 1 expectation(s): attribute price",
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    return Event(**{**values, **changes})


def test_an_email_action_renders_its_templates_and_logs_in_with_the_secret(
        smtp_sink: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_SMTP_PASSWORD", PASSWORD)
    store = EnvSecretStore(env_file=tmp_path / "absent.env")
    catalog = load_catalog()
    catalog.smtp = SmtpSettings(host="127.0.0.1", port=smtp_sink.port, tls="none", username="platform",
                                password={"type": "secret", "key": "smtp_password"}, sender="platform@example.org")
    action = EmailAction(name="batch_mail", description="-", type="email", to=["ana@example.org", "bo@example.org"],
                         after_systems=["TST01"], subject="[$system_id] batch $batch_id: $layer $status",
                         body="Delivery $source_ref ($batch_timestamp), event $event_id:\n$batch_summary\n-- $action")
    summary = {"source_ref": "2026-01-02", "batch_timestamp": "2026-01-02T00:00:00+00:00", "batch_status": "failed",
               "batch_message": "", "batch_summary": "quality  vehicle_option       failed     in=120 +0 ~0 -0"}
    context = ActionContext(event=event(), summary=summary, action=action, catalog=catalog, warehouse_url="-",
                            state_dir=tmp_path, secrets=store, run_dbt=lambda args: None, dagster_run_id="run-x",
                            log=logging.getLogger("test"))
    assert EmailRunner().run(context) == "sent to ana@example.org, bo@example.org"

    assert smtp_sink.logins == ["platform"]
    [message] = smtp_sink.messages
    assert (message["From"], message["To"], message["Subject"]) == (
        "platform@example.org", "ana@example.org, bo@example.org", "[TST01] batch 7: quality failed")
    assert message.get_content().replace("\r\n", "\n") == (  # SMTP carries CRLF line ends
        "Delivery 2026-01-02 (2026-01-02T00:00:00+00:00), event 41:\n"
        "quality  vehicle_option       failed     in=120 +0 ~0 -0\n-- batch_mail\n")


def test_the_slack_webhook_gets_the_failure_as_json_text(webhook_sink: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_OPS_HOOK", webhook_sink.url)
    channel = SlackChannel(type="slack", webhook_url={"type": "secret", "key": "ops_hook"})
    title, text = failure_message(event())
    post_webhook(channel, EnvSecretStore(env_file=tmp_path / "absent.env"), text=text)
    assert webhook_sink.posts == [("/hooks/T000/B000/XXXXsecretpath", {"text": (
        "dataplatform: entity TST01.vehicle_option FAILED in quality (batch 7)\n"
        "batch: 7 (Dagster run run-abc, event 41)\n"
        "message: quality gate failed for vehicle_option (batch 7), 1 expectation(s): attribute price\n"
        "to fix: fix the delivery and land it again with `dataplatform run --force --batch 7` (it is then built"
        " again), or skip it for good with `dataplatform skip --entity vehicle_option --batch 7`")})]
    assert title == "dataplatform: entity TST01.vehicle_option FAILED in quality (batch 7)"


def test_a_webhook_that_refuses_says_its_status_not_its_url(webhook_sink: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    webhook_sink.status = 403
    monkeypatch.setenv("DATAPLATFORM_SECRET_OPS_HOOK", webhook_sink.url)
    channel = SlackChannel(type="slack", webhook_url={"type": "secret", "key": "ops_hook"})
    with pytest.raises(RuntimeError) as raised:
        post_webhook(channel, EnvSecretStore(env_file=tmp_path / "absent.env"), text="x")
    assert str(raised.value) == "the Slack-compatible webhook answered HTTP 403"


def test_a_layer_failure_names_the_command_that_fixes_it() -> None:
    landing = event(kind="system_layer_processed", entity=None, layer="landing",
                    message="TST01: delivery 2026-01-02: vehicles.json record 3: not valid JSON")
    title, text = failure_message(landing)
    assert title == "dataplatform: system TST01 FAILED in landing (batch 7)"
    assert text.endswith("to fix: fix the source or delivery, then `dataplatform run --system TST01` (the delivery"
                         " lands again under the same batch id)")
    silver = event(layer="silver", message="batch 7 failed in silver for vehicle_option; its later batches wait"
                                           " behind it: fix the delivery ... `dataplatform skip ...`")
    assert "to fix:" not in failure_message(silver)[1]  # the message says it already
