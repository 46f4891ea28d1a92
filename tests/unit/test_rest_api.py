"""The rest_api connector against a real HTTP server on loopback (tests/rest_fixture_server.py): every pagination
style and auth kind reads the same nested records, transient errors are retried, terminal ones fail at once
naming the endpoint and the URL but no secret, and a delta endpoint reads from its cursor."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rest_fixture_server import (
    API_KEY,
    API_KEY_HEADER,
    API_KEY_PARAM,
    BASIC_PASSWORD,
    BASIC_USER,
    BEARER_TOKEN,
    CLIENT_ID,
    CLIENT_SECRET,
    SECRET_VALUES,
    FixtureApi,
    record,
    serve,
)

from ingestion.connectors import CursorReached, PendingLoad, connector_for
from ingestion.connectors.rest_api import RestApiError
from metadata.models import RestApiConnection, parse_connection
from secret_store.redact import remember_secret

FAST_RETRY = {"max_attempts": 3, "backoff_factor": 0, "max_delay": 0.05, "jitter": 0.01, "timeout": 5}


@pytest.fixture(scope="module")
def api() -> Iterator[FixtureApi]:
    for value in (*SECRET_VALUES, "not-the-secret"):
        remember_secret(value)  # as resolving them from the secret store does
    with serve() as server:
        yield server


def _connection(api: FixtureApi, endpoint: dict[str, Any], **extra: Any) -> RestApiConnection:
    raw = {"base_url": api.url, "retry": FAST_RETRY, "endpoints": {"items": endpoint}, **extra}
    connection = parse_connection("rest_api", raw, resolved=True)
    assert isinstance(connection, RestApiConnection)
    return connection


def _read(connection: RestApiConnection, *, cursors: dict[str, str] | None = None,
          reached: CursorReached | None = None) -> list[dict[str, Any]]:
    load = PendingLoad("2026-01-01T00:00:00Z", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), cursors or {})
    raw = connector_for("rest_api").raw_records(connection, "items", load, base_dir=Path("."),
                                                reached=reached or CursorReached())
    return [json.loads(text) for text in raw]


ALL = [record(n) for n in range(1, 6)]


@pytest.mark.parametrize("endpoint", [
    {"path": "/json_link/items", "records_path": "data.items",
     "paginator": {"type": "json_link", "next_url_path": "links.next"}},
    {"path": "/header_link/items", "paginator": {"type": "header_link"}},
    {"path": "/offset/items", "records_path": "items",
     "paginator": {"type": "offset", "limit": 2, "total_path": "total"}},
    {"path": "/page_number/items", "records_path": "results", "paginator": {"type": "page_number"}},
    {"path": "/cursor/items", "records_path": "items",
     "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "after"}},
], ids=["json_link", "header_link", "offset", "page_number", "cursor"])
def test_every_pagination_style_reads_every_nested_record_once_in_order(api: FixtureApi, endpoint: dict) -> None:
    assert _read(_connection(api, endpoint)) == ALL


AUTH = {
    "bearer": {"type": "bearer", "token": BEARER_TOKEN},
    "api_key_header": {"type": "api_key", "name": API_KEY_HEADER, "location": "header", "api_key": API_KEY},
    "api_key_query": {"type": "api_key", "name": API_KEY_PARAM, "location": "query", "api_key": API_KEY},
    "basic": {"type": "http_basic", "username": BASIC_USER, "password": BASIC_PASSWORD},
    "oauth2": {"type": "oauth2_client_credentials", "token_url": "{url}/oauth/token", "client_id": CLIENT_ID,
               "client_secret": CLIENT_SECRET},
}
WRONG = {"bearer": "token", "api_key_header": "api_key", "api_key_query": "api_key", "basic": "password",
         "oauth2": "client_secret"}


def _auth(api: FixtureApi, kind: str, *, wrong: bool = False) -> dict[str, Any]:
    auth = {k: v.replace("{url}", api.url) for k, v in AUTH[kind].items()}
    if wrong:
        auth[WRONG[kind]] = "not-the-secret"
    return auth


@pytest.mark.parametrize("kind", list(AUTH))
def test_every_auth_kind_reads_with_the_right_credentials_and_fails_naming_the_url_with_wrong_ones(
        api: FixtureApi, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    endpoint = {"path": f"/auth/{kind}/items"}
    caplog.set_level(logging.DEBUG)
    assert _read(_connection(api, endpoint, auth=_auth(api, kind))) == ALL
    with pytest.raises(RestApiError) as error:
        _read(_connection(api, endpoint, auth=_auth(api, kind, wrong=True)))
    message = str(error.value)
    if kind == "oauth2":
        assert message == (f"endpoint items: the OAuth2 token request to {api.url}/oauth/token was refused (HTTP 401);"
                           " check the secrets of 'auth.client_id' and 'auth.client_secret' and 'auth.token_url'")
    else:
        assert message == (f"endpoint items: GET {api.url}/auth/{kind}/items answered HTTP 401 Unauthorized: the "
                           "credentials were refused; check the secrets of 'auth'")
    logged = caplog.text + message
    assert not [s for s in (*SECRET_VALUES, "not-the-secret") if s in logged]


def test_numbers_beyond_64_bits_land_as_given_and_nan_is_refused(api: FixtureApi) -> None:
    raw = list(connector_for("rest_api").raw_records(
        _connection(api, {"path": "/odd/items"}), "items", PendingLoad("x", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        base_dir=Path("."), reached=CursorReached()))
    # Every digit of the integer kept; 1e-400 is below what a double holds and reads as 0.0 (as in dlt's own client).
    assert raw == ['{"id": 18446744073709551616, "big": 1.5e+300}', '{"id": 2, "tiny": 0.0}']
    with pytest.raises(RestApiError, match="^endpoint items: record 1 holds NaN or Infinity, which is not JSON"):
        _read(_connection(api, {"path": "/nan/items"}))


def test_429_is_retried_honouring_retry_after_and_then_read(api: FixtureApi) -> None:
    api.flaky_failures = api.hits("/flaky/items") + 2
    before = api.hits("/flaky/items")
    assert _read(_connection(api, {"path": "/flaky/items"})) == ALL
    assert api.hits("/flaky/items") - before == 3  # two 429s, then the answer


def test_a_500_that_persists_fails_after_the_systems_attempts(api: FixtureApi) -> None:
    before = api.hits("/broken/items")
    with pytest.raises(RestApiError) as error:
        _read(_connection(api, {"path": "/broken/items"}))
    assert str(error.value) == (f"endpoint items: GET {api.url}/broken/items still answered HTTP 500 Internal Server "
                                "Error after 3 attempts; try again later, or raise the system's 'retry' limits")
    assert api.hits("/broken/items") - before == 3


def test_a_server_that_does_not_answer_fails_after_the_attempts_naming_the_url() -> None:
    with serve() as gone:
        url = gone.url
    connection = parse_connection("rest_api", {"base_url": url, "retry": FAST_RETRY,
                                               "endpoints": {"items": {"path": "/x"}}}, resolved=True)
    with pytest.raises(RestApiError, match=f"^endpoint items: no answer from {url}/x after 3 attempts "
                                           r"\(ConnectionError\); check that the server is up"):
        _read(connection)  # type: ignore[arg-type]


@pytest.mark.parametrize(("endpoint", "message"), [
    ({"path": "/nowhere"}, "endpoint items: GET {url}/nowhere answered HTTP 404 Not Found; check 'base_url' and "
                           "the endpoint's 'path'"),
    ({"path": "/object/items", "records_path": "items"},
     "endpoint items: GET {url}/object/items: the records path 'items' is not in the response (it has: 'count'); "
     "fix the endpoint's 'records_path'"),
    ({"path": "/object/items"}, "endpoint items: GET {url}/object/items answered with a JSON dict, not a list of "
                                "records; declare the endpoint's 'records_path' (where the records are in the body)"),
    ({"path": "/loop/items", "records_path": "items", "paginator": {"type": "json_link"}},
     "endpoint items: the server sent the same page again (GET {url}/loop/items with the same parameters, page 2); "
     "its pagination does not advance: check the endpoint's 'paginator'"),
    ({"path": "/endless/items", "records_path": "items", "paginator": {"type": "json_link"}, "max_pages": 4},
     "endpoint items: more than 4 pages in one run (GET {url}/endless/items); the pagination does not end: check "
     "the endpoint's 'paginator', or raise its 'max_pages'"),
], ids=["404", "records_path_missing", "body_not_a_list", "repeating_next_link", "endless"])
def test_terminal_errors_fail_at_once_naming_endpoint_and_url(api: FixtureApi, endpoint: dict, message: str) -> None:
    with pytest.raises(RestApiError) as error:
        _read(_connection(api, endpoint))
    assert str(error.value) == message.format(url=api.url)


DELTA = {"path": "/delta/items", "records_path": "data", "paginator": {"type": "json_link"},
         "cursor_param": "updated_since", "cursor_field": "updated_at"}


def test_a_delta_endpoint_sends_the_stored_cursor_rereads_the_boundary_and_reaches_the_largest_value(
        api: FixtureApi) -> None:
    reached, first = CursorReached(), len(api.requests)
    assert _read(_connection(api, DELTA), reached=reached) == ALL
    assert reached.values == {"items": "2026-01-01T00:00:05Z"}
    assert api.requests[first][:2] == ("/delta/items", {})  # no cursor yet, no initial value: from the beginning

    reached = CursorReached()
    assert _read(_connection(api, DELTA), cursors={"items": "2026-01-01T00:00:04Z"}, reached=reached) == ALL[3:]
    first = next(q for p, q, _ in reversed(api.requests) if p == "/delta/items" and "page" not in q)
    assert first == {"updated_since": "2026-01-01T00:00:04Z"}
    assert reached.values == {"items": "2026-01-01T00:00:05Z"}


def test_a_delta_endpoint_with_nothing_new_stays_where_it_was_and_a_first_run_sends_the_initial_value(
        api: FixtureApi) -> None:
    reached = CursorReached()
    assert _read(_connection(api, DELTA), cursors={"items": "2027-01-01"}, reached=reached) == []
    assert reached.values == {"items": "2027-01-01"}
    reached = CursorReached()
    assert _read(_connection(api, {**DELTA, "initial_cursor": "2026-01-01T00:00:03Z"}), reached=reached) == ALL[2:]
    assert reached.values == {"items": "2026-01-01T00:00:05Z"}


def test_a_full_endpoint_ignores_a_stored_cursor_and_reports_none(api: FixtureApi) -> None:
    reached = CursorReached()
    endpoint = {"path": "/json_link/items", "records_path": "data.items", "paginator": {"type": "json_link",
                                                                                        "next_url_path": "links.next"}}
    assert _read(_connection(api, endpoint), cursors={"items": "x"}, reached=reached) == ALL
    assert reached.values == {}


def test_check_tells_per_endpoint_whether_it_answers_without_a_secret(api: FixtureApi) -> None:
    connection = parse_connection("rest_api", {
        "base_url": api.url, "retry": FAST_RETRY,
        "auth": _auth(api, "api_key_query"),
        "endpoints": {"good": {"path": "/auth/api_key_query/items"}, "gone": {"path": "/nowhere"}},
    }, resolved=True)
    checks = connector_for("rest_api").check(connection, base_dir=Path("."))  # type: ignore[attr-defined]
    assert [(c.endpoint, c.ok, c.message) for c in checks] == [
        ("good", True, "answers, credentials accepted; 5 record(s) on the first page"),
        ("gone", False, f"endpoint gone: GET {api.url}/nowhere answered HTTP 404 Not Found; check 'base_url' and the "
                        "endpoint's 'path'"),
    ]
