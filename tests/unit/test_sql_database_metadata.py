"""The sql_database connection model: what `dataplatform validate` says about a SQL system, naming the file, the
object and the field (a password or URL written in place, both ways to connect given, a table and a query on one
endpoint, a query that is not a single SELECT, a delta endpoint without its cursor column), and the example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from metadata.catalog import MetadataError, Problem, load_catalog
from metadata.models import RetryLimits, SqlDatabaseConnection, parse_connection, query_problem
from secret_store.env import EnvSecretStore

PASSWORD = {"type": "secret", "key": "sql01/password"}


def _valid() -> dict[str, Any]:
    return {
        "driver": "postgresql", "host": "db.example.com", "port": 5432, "user": "reader", "password": PASSWORD,
        "database": "shop",
        "endpoints": {
            "orders": {"table": "public.orders", "load": "delta", "cursor_column": "updated_at"},
            "customers": {"query": "select id, name from customers"},
        },
    }


def _problems(folder: Path, store: EnvSecretStore, connection: dict[str, Any]) -> list[Problem]:
    path = folder / "systems.json"
    data = json.loads(path.read_text())
    system = {"id": "SQL01", "name": "A database", "description": "test", "type": "sql_database",
              "connection": connection}
    data["systems"] = [s for s in data["systems"] if s["id"] != "SQL01"] + [system]
    path.write_text(json.dumps(data))
    try:
        load_catalog(folder, secrets=store)
    except MetadataError as err:
        return err.problems
    return []


def _where(problems: list[Problem]) -> list[tuple[str, str, str, str]]:
    return [(p.file, p.object, p.field, p.message) for p in problems]


def test_a_valid_sql_system_loads_with_its_secret_set(folder: Path, store: EnvSecretStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_SQL01_PASSWORD", "value")
    assert _problems(folder, store, _valid()) == []
    [problem] = _problems(folder, store, {"url": {"type": "secret", "key": "sql01/url"},
                                          "endpoints": {"t": {"table": "t"}}})
    assert (problem.file, problem.object, problem.field) == ("systems.json", "system SQL01", "connection")
    assert problem.message.startswith("secret 'sql01/url' is missing")


def test_defaults_full_load_chunks_and_retry_limits() -> None:
    connection = parse_connection("sql_database", {"url": {"type": "secret", "key": "k"},
                                                   "endpoints": {"t": {"table": "orders"}}})
    assert isinstance(connection, SqlDatabaseConnection)
    endpoint = connection.endpoints["t"]
    assert (endpoint.table, endpoint.query, endpoint.load, endpoint.cursor_column, endpoint.initial_cursor,
            endpoint.chunk_size) == ("orders", None, "full", None, None, 10_000)
    assert connection.retry == RetryLimits(max_attempts=3, backoff_factor=1.0, max_delay=30.0, jitter=1.0,
                                           timeout=30.0)


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"password": "plain-value"}, "connection.password",
     'Value error, a credential must be a secret reference {"type": "secret", "key": "..."}, never the value '
     "itself; put the value in the secret store (e.g. the environment or .env)"),
    ({"url": "postgresql://u:plain-value@h/db"}, "connection.url",
     'Value error, a credential must be a secret reference {"type": "secret", "key": "..."}, never the value '
     "itself; put the value in the secret store (e.g. the environment or .env)"),
    ({"url": PASSWORD}, "connection",
     "Value error, give either 'url' or the parts (driver, host, port, user, password, database), not both"),
    ({"driver": None, "user": None}, "connection",
     "Value error, missing 'driver', 'user': give 'url' (a secret reference) or driver, host, user, database "
     "(and port, password)"),
    ({"driver": "oracle"}, "connection.driver",
     "Input should be 'postgresql', 'mysql' or 'mariadb' (got 'oracle')"),
    ({"port": 70000}, "connection.port", "Input should be less than 65536 (got 70000)"),
])
def test_connection_problems_are_named_without_echoing_a_secret(folder: Path, store: EnvSecretStore,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                change: dict[str, Any], field: str,
                                                                message: str) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_SQL01_PASSWORD", "value")
    connection = {k: v for k, v in {**_valid(), **change}.items() if v is not None}
    problems = _problems(folder, store, connection)
    assert _where(problems) == [("systems.json", "system SQL01", field, message)]
    assert "plain-value" not in str(problems)


@pytest.mark.parametrize(("endpoint", "field", "message"), [
    ({"table": "orders", "query": "select 1"}, "connection.endpoints.e",
     "Value error, declare exactly one of 'table' (e.g. \"public.orders\") and 'query' (a SELECT)"),
    ({}, "connection.endpoints.e",
     "Value error, declare exactly one of 'table' (e.g. \"public.orders\") and 'query' (a SELECT)"),
    ({"table": "orders", "load": "delta"}, "connection.endpoints.e",
     "Value error, load 'delta' needs 'cursor_column' (an updated-at timestamp or an increasing id)"),
    ({"table": "orders", "cursor_column": "id"}, "connection.endpoints.e",
     "Value error, 'cursor_column' and 'initial_cursor' go with load 'delta'; set it or remove them"),
    ({"table": "public.orders; drop table x"}, "connection.endpoints.e.table",
     "String should match pattern '^[A-Za-z_][A-Za-z0-9_$]*(\\.[A-Za-z_][A-Za-z0-9_$]*)?$' "
     "(got 'public.orders; drop table x')"),
    ({"query": "delete from orders"}, "connection.endpoints.e.query",
     "Value error, not a read-only query: starts with 'delete'; only a SELECT (or WITH ... SELECT) is read "
     "(got 'delete from orders')"),
    ({"query": "select 1; delete from orders"}, "connection.endpoints.e.query",
     "Value error, not a read-only query: holds more than one statement (a ';' inside); give a single SELECT "
     "(got 'select 1; delete from orders')"),
    ({"table": "orders", "chunk_size": 0}, "connection.endpoints.e.chunk_size",
     "Input should be greater than 0 (got 0)"),
    ({"table": "orders", "load": "incremental"}, "connection.endpoints.e.load",
     "Input should be 'full', 'delta' or 'cdc' (got 'incremental')"),
    ({"query": "select 1", "load": "cdc"}, "connection.endpoints.e",
     "Value error, load 'cdc' reads a table's changes: give 'table', not 'query'"),
    ({"table": "orders", "cursor": "id"}, "connection.endpoints.e.cursor",
     "Extra inputs are not permitted (got 'id')"),
])
def test_endpoint_problems_are_named_at_their_field(folder: Path, store: EnvSecretStore,
                                                    monkeypatch: pytest.MonkeyPatch, endpoint: dict[str, Any],
                                                    field: str, message: str) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_SQL01_PASSWORD", "value")
    connection = {**_valid(), "endpoints": {"e": endpoint}}
    assert _where(_problems(folder, store, connection)) == [("systems.json", "system SQL01", field, message)]


def test_read_only_queries() -> None:
    assert query_problem("select * from orders;") is None
    assert query_problem("-- the open orders\n/* all of them */ WITH o AS (SELECT 1) SELECT * FROM o") is None
    assert query_problem("  ") == "is empty; give a SELECT statement"
    assert query_problem("/* select */ update orders set x = 1") == (
        "starts with 'update'; only a SELECT (or WITH ... SELECT) is read")
    assert query_problem("selectx from t") == "starts with 'selectx'; only a SELECT (or WITH ... SELECT) is read"


def test_resolved_credentials_are_accepted_only_at_run_time() -> None:
    resolved = {**_valid(), "password": "the-value"}
    parsed = parse_connection("sql_database", resolved, resolved=True)
    assert isinstance(parsed, SqlDatabaseConnection) and parsed.password == "the-value"
    with pytest.raises(ValidationError):
        parse_connection("sql_database", resolved)


def test_the_bundled_sql_example_is_valid(store: EnvSecretStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_SQL01_PASSWORD", "value")
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "metadata" / "examples" / "sql_database",
                           secrets=store)
    assert list(catalog.systems) == ["SQL01"]
    assert [c.name for c in catalog.columns["sql_order"]] == ["id", "customer_id", "amount", "placed_at", "receipt",
                                                              "updated_at"]
    assert [c.name for c in catalog.columns["sql_customer"]] == ["id", "name", "email", "address"]


def test_the_bundled_cdc_example_is_valid(store: EnvSecretStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_SQL02_PASSWORD", "value")
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "metadata" / "examples" / "sql_cdc", secrets=store)
    assert list(catalog.systems) == ["SQL02"]
    entity = catalog.entities["sql_stock"]
    assert catalog.is_change_log(entity) and entity.deleted_when is not None
    assert [c.name for c in catalog.columns["sql_stock"]] == ["sku", "name", "quantity", "price", "updated_at",
                                                              "cdc_lsn"]
