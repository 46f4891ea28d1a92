"""actions.json: action types, their triggers and settings, the smtp settings and notification channels; every
problem names file, object and field."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from audit.events import Event
from metadata.catalog import MetadataError, load_catalog
from metadata.models import TEMPLATE_FIELDS
from secret_store.env import EnvSecretStore

SMTP = {"host": "127.0.0.1", "port": 2525, "tls": "none", "sender": "platform@example.org"}


def edit(folder: Path, mutate: Callable[[Any], None]) -> None:
    path = folder / "actions.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data, indent=2))


def problems_of(folder: Path, store: EnvSecretStore) -> list[tuple[str, str, str, str]]:
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    return [(p.file, p.object, p.field, p.message) for p in excinfo.value.problems]


def add(action: dict[str, Any]) -> Callable[[Any], None]:
    return lambda d: d["actions"].append({"description": "a test action", **action})


def test_the_demo_declares_a_dbt_build_and_the_python_example(folder: Path, store: EnvSecretStore) -> None:
    catalog = load_catalog(folder, secrets=store)
    assert [(a.name, a.type, a.on) for a in catalog.actions] == [
        ("refresh_gold", "dbt_build", "success"), ("owner_fleet_model", "python", "success")]
    assert catalog.actions[1].settings == {"test_share": 0.25}
    assert catalog.smtp is None and catalog.notifications == []


def test_email_action_and_channels_with_their_secrets(folder: Path, store: EnvSecretStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_OPS_HOOK", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("DATAPLATFORM_SECRET_SMTP_PASSWORD", "pw")
    edit(folder, lambda d: d.update(
        smtp={**SMTP, "username": "platform", "password": {"type": "secret", "key": "smtp_password"}},
        notifications=[{"type": "slack", "webhook_url": {"type": "secret", "key": "ops_hook"}},
                       {"type": "email", "to": ["ops@example.org"]}]))
    edit(folder, add({"name": "mail_owner", "type": "email", "to": ["me@example.org"],
                      "after": [{"system": "TST01", "entity": "owner", "layer": "silver"}],
                      "subject": "$system_id.$entity batch $batch_id", "body": "${batch_summary}"}))
    catalog = load_catalog(folder, secrets=store)
    mail = catalog.actions[-1]
    assert (mail.type, mail.to, [(t.system, t.entity, t.layer) for t in mail.triggers()]) == (
        "email", ["me@example.org"], [("TST01", "owner", "silver")])
    assert [c.type for c in catalog.notifications] == ["slack", "email"]
    assert catalog.smtp is not None and catalog.smtp.port == 2525


def test_an_unknown_action_type_names_the_known_ones(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, add({"name": "page_me", "type": "pager", "after_systems": ["TST01"]}))
    assert problems_of(folder, store) == [
        ("actions.json", "actions[2] (page_me)", "type",
         "unknown action type 'pager'; known: 'dbt_build', 'email', 'python'")]


def test_unknown_system_entity_and_endpoint_in_after(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, add({"name": "follow", "type": "dbt_build", "select": "gold", "after": [
        {"system": "XYZ99", "layer": "gold"},
        {"system": "TST01", "entity": "truck", "layer": "silver"},
        {"system": "TST01", "entity": "owner", "layer": "landing"}]}))
    assert problems_of(folder, store) == [
        ("actions.json", "action follow", "after[0].system", "unknown system 'XYZ99'; declare it in systems.json"),
        ("actions.json", "action follow", "after[1].entity",
         "unknown entity 'truck' of TST01; known: owner, vehicle, vehicle_option"),
        ("actions.json", "action follow", "after[2].entity",
         "'owner' is not an endpoint of TST01 (landing reports endpoints; has: owners, vehicles)"),
    ]


def test_an_unknown_layer_and_missing_settings(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, add({"name": "follow", "type": "dbt_build", "after": [{"system": "TST01", "layer": "platinum"}]}))
    edit(folder, add({"name": "code", "type": "python", "after_systems": ["TST01"]}))
    edit(folder, add({"name": "nothing", "type": "dbt_build", "select": "gold"}))
    found = {(p[1], p[2]): p[3] for p in problems_of(folder, store)}
    assert found[("actions[2] (follow)", "after.0.layer")].startswith(
        "Input should be 'landing', 'quality', 'bronze', 'silver' or 'gold' (got 'platinum')")
    assert found[("actions[2] (follow)", "select")] == "Field required"
    assert found[("actions[3] (code)", "class")] == "Field required"
    assert found[("actions[4] (nothing)", "-")] == (
        "Value error, give `after` (or `after_systems`): which events this action follows")


def test_email_without_smtp_an_unknown_template_name_and_a_class_that_cannot_load(
        folder: Path, store: EnvSecretStore) -> None:
    edit(folder, add({"name": "mail", "type": "email", "to": ["me@example.org"], "after_systems": ["TST01"],
                      "subject": "batch $batch_id of $sytem_id", "body": "cost: 5$"}))
    edit(folder, add({"name": "code", "type": "python", "class": "actions.examples.owner_fleet_model:Nope",
                      "after_systems": ["TST01"]}))
    found = problems_of(folder, store)
    assert found[0] == ("actions.json", "action mail", "type", "sends email, but the file declares no `smtp`"
                        " settings; add {\"smtp\": {\"host\": ..., \"port\": 587, \"sender\": ...}}")
    assert found[1][:3] == ("actions.json", "action mail", "subject")
    assert found[1][3].startswith("unknown template name(s) sytem_id; known: event_id, kind, status, ")
    assert found[2] == ("actions.json", "action mail", "body", "unknown template name(s) (a '$' not followed by"
                        " a name: write $name or ${name}, and $$ for '$'); known: " + ", ".join(TEMPLATE_FIELDS))
    assert found[3] == ("actions.json", "action code", "class", "cannot load 'actions.examples.owner_fleet_model:Nope':"
                        " module 'actions.examples.owner_fleet_model' has no attribute 'Nope'")


def test_a_channel_secret_that_is_not_set_and_a_webhook_url_in_clear(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, lambda d: d.update(notifications=[{"type": "slack", "webhook_url": {"type": "secret",
                                                                                       "key": "ops_hook"}}]))
    assert problems_of(folder, store) == [
        ("actions.json", "notifications[0]", "-",
         f"secret 'ops_hook' is missing: {store.describe('ops_hook')}")]
    edit(folder, lambda d: d.update(notifications=[{"type": "slack", "webhook_url": "https://hooks.example/x"}]))
    found = problems_of(folder, store)
    assert [(p[0], p[1], p[2]) for p in found] == [("actions.json", "notifications[0]", "webhook_url")]
    assert "SecretRef" in found[0][3]  # the URL is the credential: only a secret reference is accepted


def test_template_names_are_the_event_fields_and_the_batch_summary() -> None:
    from audit.events import batch_summary  # noqa: F401 - its keys are listed below, as it returns them

    summary = ("source_ref", "batch_timestamp", "batch_status", "batch_message", "batch_summary")
    assert TEMPLATE_FIELDS == (*[f.name for f in dataclasses.fields(Event)], *summary, "action")
