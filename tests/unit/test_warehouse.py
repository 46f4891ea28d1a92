"""Tests for warehouse.embedded against a real embedded PostgreSQL (no mocks)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from warehouse.embedded import (
    DATABASE_URL_ENV,
    EmbeddedPostgres,
    WarehouseError,
    connection_params,
    open_warehouse,
    redact_url,
    state_dir,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private DATAPLATFORM_HOME; whatever server a test leaves running there is stopped afterwards."""
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    yield tmp_path / "home"
    server = EmbeddedPostgres(tmp_path / "home" / "postgres")
    if server.is_running():
        server.stop()


def _password(url: str) -> str:
    return str(connection_params(url)["password"])


def test_start_and_connect_over_tcp_with_password(home: Path) -> None:
    messages: list[str] = []
    with open_warehouse(echo=messages.append) as url:
        params = connection_params(url)
        assert params["host"] == "127.0.0.1" and params["dbname"] == "warehouse" and params["user"] == "postgres"
        assert len(str(params["password"])) > 20
        with psycopg.connect(**params) as conn:  # type: ignore[arg-type]
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.info.hostaddr == "127.0.0.1"  # TCP, not a Unix socket
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.replace(_password(url), "wrong"))
    assert state_dir() == home
    assert (home / "postgres" / "password").stat().st_mode & 0o777 == 0o600
    assert not EmbeddedPostgres(home / "postgres").is_running()
    assert messages[0].startswith("starting embedded PostgreSQL in ")
    assert all(_password(url) not in message for message in messages)


def test_nested_open_reuses_running_server(home: Path) -> None:
    inner_messages: list[str] = []
    with open_warehouse() as outer_url:
        with open_warehouse(echo=inner_messages.append) as inner_url:
            assert inner_url == outer_url
        assert inner_messages == []  # nothing was started
        assert EmbeddedPostgres(home / "postgres").is_running()
        with psycopg.connect(outer_url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    assert not EmbeddedPostgres(home / "postgres").is_running()


def test_stop_then_start_keeps_data_and_avoids_taken_port(home: Path) -> None:
    server = EmbeddedPostgres(home / "postgres")
    url = server.start()
    assert server.start() == url  # idempotent
    with psycopg.connect(url) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (42)")
    server.stop()
    assert not server.is_running()
    server.stop()  # stopping a stopped server is fine
    assert server.start() == url  # same port again while it is free
    server.stop()
    old_port = int(connection_params(url)["port"])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old port may be in TIME_WAIT
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        new_url = server.start()
    assert connection_params(new_url)["port"] != old_port
    with psycopg.connect(new_url) as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)
    server.stop()


def test_long_state_path_uses_short_socket_dir(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / ("x" * 100) / "postgres")
    try:
        with psycopg.connect(server.start()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        socket_dir = Path((server.data_dir / "postmaster.pid").read_text().splitlines()[4])
        assert socket_dir.parent == Path("/tmp") and socket_dir.name.startswith("dataplatform-pg-")
    finally:
        server.stop()
    shutil.rmtree(socket_dir)


def test_start_failure_names_log_and_hides_password(home: Path) -> None:
    server = EmbeddedPostgres(home / "postgres")
    password = _password(server.start())
    server.stop()
    with open(server.data_dir / "postgresql.conf", "a") as conf:
        conf.write("shared_buffers = nonsense\n")
    with pytest.raises(WarehouseError) as error:
        server.start()
    message = str(error.value)
    assert str(server.log_file) in message and str(server.root) in message
    assert "shared_buffers" in message and "delete" in message
    assert password not in message


def test_external_url_starts_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    external = "postgresql://me:s3cret@db.example.com:6543/analytics"
    monkeypatch.setenv(DATABASE_URL_ENV, external)
    with open_warehouse(echo=pytest.fail) as url:
        assert url == external
    assert not home.exists()


def test_redact_url_and_connection_params() -> None:
    url = "postgresql://postgres:top-secret@127.0.0.1:5433/warehouse"
    assert redact_url(url) == "postgresql://postgres:***@127.0.0.1:5433/warehouse"
    assert "hunter2" not in redact_url("postgresql://u@h/db?sslmode=require&password=hunter2")
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert connection_params(url) == {
        "host": "127.0.0.1", "port": 5433, "user": "postgres", "password": "top-secret", "dbname": "warehouse",
    }


def test_the_last_user_out_stops_the_server_whoever_started_it(home: Path) -> None:
    """Two commands overlapping: the one that started the server finishes first; the other keeps it."""
    server = EmbeddedPostgres(home / "postgres")
    first, second = open_warehouse(), open_warehouse()
    url = first.__enter__()
    assert second.__enter__() == url
    first.__exit__(None, None, None)
    assert server.is_running()
    with psycopg.connect(url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    second.__exit__(None, None, None)
    assert not server.is_running()


def test_a_server_started_without_a_lease_is_left_running(home: Path) -> None:
    server = EmbeddedPostgres(home / "postgres")
    url = server.start()
    with open_warehouse() as reused:
        assert reused == url
    assert server.is_running()
    server.stop()


def test_a_dead_commands_lease_does_not_keep_the_server_alive(home: Path) -> None:
    server = EmbeddedPostgres(home / "postgres")
    with open_warehouse():
        (home / "postgres" / "leases" / "999999999-0").touch()  # a pid that cannot exist
    assert not server.is_running()
