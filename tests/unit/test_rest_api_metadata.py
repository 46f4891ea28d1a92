"""The rest_api connection model: what `dataplatform validate` says about a REST system, naming the file, the
object and the field (unknown keys, a credential that is not a secret reference, a missing secret, a cursor
parameter without its cursor field), and what a valid declaration becomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from metadata.catalog import MetadataError, Problem, load_catalog
from metadata.models import OffsetPaging, RestApiConnection, RetryLimits, parse_connection
from secret_store.env import EnvSecretStore

TOKEN = {"type": "secret", "key": "rst01/token"}


def _rest_system(connection: dict[str, Any]) -> dict[str, Any]:
    return {"id": "RST01", "name": "A REST API", "description": "test", "type": "rest_api", "connection": connection}


def _valid() -> dict[str, Any]:
    return {
        "base_url": "https://api.example.com/v1",
        "auth": {"type": "bearer", "token": TOKEN},
        "endpoints": {
            "items": {"path": "/items", "records_path": "data", "paginator": {"type": "offset", "limit": 100},
                      "cursor_param": "updated_since", "cursor_field": "updated_at"},
        },
    }


def _problems(folder: Path, store: EnvSecretStore, connection: dict[str, Any]) -> list[Problem]:
    path = folder / "systems.json"
    data = json.loads(path.read_text())
    data["systems"].append(_rest_system(connection))
    path.write_text(json.dumps(data))
    try:
        load_catalog(folder, secrets=store)
    except MetadataError as err:
        return err.problems
    return []


def _where(problems: list[Problem]) -> list[tuple[str, str, str, str]]:
    return [(p.file, p.object, p.field, p.message) for p in problems]


def test_a_valid_rest_system_loads_with_its_secret_set(folder: Path, store: EnvSecretStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_RST01_TOKEN", "value")
    assert _problems(folder, store, _valid()) == []


def test_a_missing_secret_is_named(folder: Path, store: EnvSecretStore) -> None:
    [problem] = _problems(folder, store, _valid())
    assert (problem.file, problem.object, problem.field) == ("systems.json", "system RST01", "connection")
    assert problem.message.startswith("secret 'rst01/token' is missing")


def test_unknown_keys_are_named_at_their_field(folder: Path, store: EnvSecretStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_RST01_TOKEN", "value")
    connection = _valid()
    connection["base_ur1"] = "typo"
    connection["auth"]["tokn"] = "typo"
    connection["endpoints"]["items"]["paginator"]["limt"] = 5
    connection["endpoints"]["items"]["record_path"] = "data"
    assert _where(_problems(folder, store, connection)) == [
        ("systems.json", "system RST01", "connection.auth.tokn", "Extra inputs are not permitted"),
        ("systems.json", "system RST01", "connection.endpoints.items.paginator.limt",
         "Extra inputs are not permitted (got 5)"),
        ("systems.json", "system RST01", "connection.endpoints.items.record_path",
         "Extra inputs are not permitted (got 'data')"),
        ("systems.json", "system RST01", "connection.base_ur1", "Extra inputs are not permitted (got 'typo')"),
    ]


@pytest.mark.parametrize(("auth", "field"), [
    ({"type": "bearer", "token": "plain-value"}, "token"),
    ({"type": "api_key", "name": "X-Key", "api_key": "plain-value"}, "api_key"),
    ({"type": "http_basic", "username": TOKEN, "password": "plain-value"}, "password"),
    ({"type": "oauth2_client_credentials", "token_url": "https://auth.example.com/token", "client_id": TOKEN,
      "client_secret": "plain-value"}, "client_secret"),
])
def test_a_credential_written_as_a_value_is_refused_without_echoing_it(folder: Path, store: EnvSecretStore,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       auth: dict[str, Any], field: str) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_RST01_TOKEN", "value")
    problems = _problems(folder, store, {**_valid(), "auth": auth})
    assert _where(problems) == [("systems.json", "system RST01", f"connection.auth.{field}",
                                 'Value error, a credential must be a secret reference {"type": "secret", "key": '
                                 '"..."}, never the value itself; put the value in the secret store (e.g. the '
                                 "environment or .env)")]
    assert "plain-value" not in str(problems)


def test_a_cursor_parameter_without_its_field_and_the_reverse_are_named(folder: Path, store: EnvSecretStore,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_RST01_TOKEN", "value")
    connection = _valid()
    connection["endpoints"]["items"].pop("cursor_field")
    connection["endpoints"]["other"] = {"path": "/other", "cursor_field": "changed"}
    assert _where(_problems(folder, store, connection)) == [
        ("systems.json", "system RST01", "connection.endpoints.items.cursor_field",
         "Value error, cursor_param 'updated_since' is given without the record field that advances it; add "
         "'cursor_field' (e.g. \"updated_at\") or remove 'cursor_param'"),
        ("systems.json", "system RST01", "connection.endpoints.other.cursor_field",
         "Value error, cursor_field is given without 'cursor_param', the query parameter that receives the cursor; "
         "add it or remove 'cursor_field' (got 'changed')"),
    ]


def test_defaults_single_page_and_retry_limits() -> None:
    connection = parse_connection("rest_api", {"base_url": "http://x", "endpoints": {"a": {"path": "/a"}}})
    assert isinstance(connection, RestApiConnection)
    endpoint = connection.endpoints["a"]
    assert (endpoint.paginator.type, endpoint.records_path, endpoint.cursor_param, endpoint.max_pages) == (
        "single_page", None, None, 10_000)
    assert connection.retry == RetryLimits(max_attempts=5, backoff_factor=1.0, max_delay=60.0, jitter=1.0, timeout=60.0)
    parsed = parse_connection("rest_api", _valid())
    assert parsed.endpoints["items"].paginator == OffsetPaging(type="offset", limit=100)  # type: ignore[union-attr]


def test_resolved_credentials_are_accepted_only_at_run_time() -> None:
    resolved = {**_valid(), "auth": {"type": "bearer", "token": "the-value"}}
    assert parse_connection("rest_api", resolved, resolved=True).auth.token == "the-value"  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        parse_connection("rest_api", resolved)


def test_the_bundled_rest_example_is_valid(store: EnvSecretStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_API01_API_KEY", "value")
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "metadata" / "examples" / "rest_api", secrets=store)
    assert list(catalog.systems) == ["API01"]
    assert [c.name for c in catalog.columns["api_item"]] == ["id", "name", "updated_at", "address_city"]
