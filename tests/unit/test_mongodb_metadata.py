"""The mongodb connection model: what `dataplatform validate` says about a MongoDB system, naming the file, the
object and the field (a URL written in place, a filter or projection that is not an object, server-side
JavaScript in a filter, delta without its field, a projection that drops the cursor field, an initial cursor
that is not Extended JSON), and what a valid declaration becomes (the initial cursor as BSON-typed text)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pydantic import ValidationError

from ingestion.connectors.mongodb import MongoDbError, _client, start_value
from metadata.catalog import MetadataError, Problem, load_catalog
from metadata.models import MongoDbConnection, RetryLimits, parse_connection
from secret_store.env import EnvSecretStore

URL = {"type": "secret", "key": "mdb01/url"}
SYSTEM = ("systems.json", "system MDB01")


def _system(connection: dict[str, Any]) -> dict[str, Any]:
    return {"id": "MDB01", "name": "A MongoDB", "description": "test", "type": "mongodb", "connection": connection}


def _valid() -> dict[str, Any]:
    return {
        "url": URL, "database": "shop",
        "endpoints": {
            "products": {"collection": "products", "filter": {"active": True}, "projection": {"notes": 0},
                         "load": "delta", "cursor_field": "updated_at",
                         "initial_cursor": {"$date": "2026-01-01T00:00:00Z"}, "batch_size": 500},
            "events": {"collection": "events"},
        },
    }


def _problems(folder: Path, store: EnvSecretStore, connection: dict[str, Any]) -> list[Problem]:
    path = folder / "systems.json"
    data = json.loads(path.read_text())
    data["systems"].append(_system(connection))
    path.write_text(json.dumps(data))
    try:
        load_catalog(folder, secrets=store)
    except MetadataError as err:
        return err.problems
    return []


def _where(problems: list[Problem]) -> list[tuple[str, str, str, str]]:
    return [(p.file, p.object, p.field, p.message) for p in problems]


@pytest.fixture
def url_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_MDB01_URL", "mongodb://reader:pw@127.0.0.1:27017")


def test_a_valid_mongodb_system_loads_with_its_secret_set(folder: Path, store: EnvSecretStore, url_set: None) -> None:
    assert _problems(folder, store, _valid()) == []


def test_defaults_and_what_a_declaration_becomes() -> None:
    connection = parse_connection("mongodb", _valid())
    assert isinstance(connection, MongoDbConnection)
    events, products = connection.endpoints["events"], connection.endpoints["products"]
    assert (events.load, events.filter, events.projection, events.cursor_field, events.batch_size) == (
        "full", {}, None, None, 1000)
    assert connection.retry == RetryLimits()
    assert products.initial_cursor_text() == '{"$date": "2026-01-01T00:00:00Z"}'
    assert start_value(products, None) == (True, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    oid = "65a1b2c3d4e5f60718293a4b"
    by_id = parse_connection("mongodb", {**_valid(), "endpoints": {"e": {
        "collection": "c", "load": "delta", "cursor_field": "_id", "initial_cursor": {"$oid": oid}}}})
    assert start_value(by_id.endpoints["e"], None) == (True, ObjectId(oid))  # type: ignore[union-attr]
    assert start_value(by_id.endpoints["e"], '{"$oid": "65a1b2c3d4e5f60718293a4c"}') == (
        True, ObjectId("65a1b2c3d4e5f60718293a4c"))  # the stored cursor wins over the initial one


def test_the_url_written_in_place_is_refused_without_echoing_it(folder: Path, store: EnvSecretStore) -> None:
    problems = _problems(folder, store, {**_valid(), "url": "mongodb://reader:plain-pw@db:27017"})
    assert _where(problems) == [(*SYSTEM, "connection.url",
                                 'Value error, a credential must be a secret reference {"type": "secret", "key": '
                                 '"..."}, never the value itself; put the value in the secret store (e.g. the '
                                 "environment or .env)")]
    assert "plain-pw" not in str(problems)


def test_a_resolved_url_that_is_not_a_mongodb_url_is_refused_when_opened_without_echoing_it() -> None:
    connection = parse_connection("mongodb", {**_valid(), "url": "postgresql://u:hidden@db/x"}, resolved=True)
    assert isinstance(connection, MongoDbConnection)
    with pytest.raises(MongoDbError) as err:
        _client(connection)
    assert str(err.value).startswith("mongodb: the URL (secret 'url') is not usable: Invalid URI scheme")
    assert "hidden" not in str(err.value)


def test_bad_endpoints_are_named_at_their_field(folder: Path, store: EnvSecretStore, url_set: None) -> None:
    connection = _valid()
    connection["endpoints"] = {
        "a": {"collection": "a", "filter": [{"x": 1}]},
        "b": {"collection": "b", "projection": "name"},
        "c": {"collection": "c", "filter": {"$or": [{"x": 1}, {"$where": "this.x > 1"}]}},
        "d": {"collection": "d", "filter": {"n": {"$expr": {"$function": {"body": "f", "args": [], "lang": "js"}}}}},
        "e": {"collection": "e", "load": "delta"},
        "f": {"collection": "f", "load": "delta", "cursor_field": "at", "projection": {"name": 1}},
        "g": {"collection": "g", "load": "delta", "cursor_field": "at", "initial_cursor": {"$date": "soon"}},
        "h": {"collection": "h", "cursor_field": "at"},
        "i": {"collection": "$cmd"},
        "j": {"collection": "j", "load": "delta", "cursor_field": "$at"},
        "k": {"collection": "k", "batch_size": 0, "colection": "typo"},
    }
    connection["database"] = "my.db"
    where = _where(_problems(folder, store, connection))
    field = {w[2]: w[3] for w in where}
    assert all(w[:2] == SYSTEM for w in where)
    assert field["connection.database"] == ("Value error, 'my.db' is not a MongoDB database name (none of / \\ . \" $, "
                                            "blanks or NUL) (got 'my.db')")
    assert field["connection.endpoints.a.filter"] == ("Value error, must be a JSON object (a MongoDB filter document), "
                                                      "not a list")
    assert field["connection.endpoints.b.projection"].startswith(
        "Value error, must be a JSON object (a MongoDB projection document), not a str")
    assert field["connection.endpoints.c.filter"].startswith(
        "Value error, uses '$where' (at '$or.1.$where'), which runs JavaScript on the server; it is never sent")
    assert field["connection.endpoints.d.filter"].startswith(
        "Value error, uses '$function' (at 'n.$expr.$function'), which runs JavaScript")
    assert field["connection.endpoints.e"].startswith("Value error, load 'delta' needs 'cursor_field'")
    assert field["connection.endpoints.f"].startswith(
        "Value error, the projection leaves out the cursor field 'at', which delta reads")
    assert field["connection.endpoints.g"].startswith("Value error, initial_cursor is not valid MongoDB Extended JSON")
    assert field["connection.endpoints.h"].startswith("Value error, 'cursor_field' / 'initial_cursor' are given but "
                                                      "load is 'full'")
    assert field["connection.endpoints.i.collection"].startswith("Value error, '$cmd' is not a collection name")
    assert field["connection.endpoints.j.cursor_field"].startswith("Value error, '$at' is not a field path")
    assert field["connection.endpoints.k.batch_size"].startswith("Input should be greater than or equal to 1")
    assert field["connection.endpoints.k.colection"].startswith("Extra inputs are not permitted")
    assert len(where) == 13


@pytest.mark.parametrize(("projection", "ok"), [
    ({"name": 1, "at": 1}, True), ({"notes": 0}, True), ({"meta": 1}, True), ({"_id": 0}, True),
    ({"at": 0}, False), ({"name": 1}, False), ({"meta": 0}, False), ({"meta.at": 1}, True),
])
def test_a_projection_must_keep_the_cursor_field(projection: dict[str, Any], ok: bool) -> None:
    field = "at" if "at" in projection or "name" in projection or "notes" in projection or "_id" in projection \
        else "meta.at"
    endpoint = {"collection": "c", "load": "delta", "cursor_field": field, "projection": projection}
    if ok:
        parse_connection("mongodb", {"url": URL, "database": "d", "endpoints": {"e": endpoint}})
    else:
        with pytest.raises(ValidationError, match=f"the cursor field '{field}'"):
            parse_connection("mongodb", {"url": URL, "database": "d", "endpoints": {"e": endpoint}})


def test_the_bundled_mongodb_example_is_valid(store: EnvSecretStore, url_set: None) -> None:
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "metadata" / "examples" / "mongodb", secrets=store)
    assert list(catalog.systems) == ["MDB01"]
    # Scalar columns of a mongodb system read a tagged Extended JSON value as their type ({"$date": ...}).
    assert [(c.name, c.pg_type, c.extended_json) for c in catalog.columns["mdb_product"]] == [
        ("sku", "text", True), ("name", "text", True), ("stock", "bigint", True), ("price", "numeric", True),
        ("updated_at", "timestamptz", True)]
