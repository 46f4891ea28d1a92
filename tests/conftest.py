"""Shared fixtures: every test session gets its own platform state folder and, when a test asks for
it, a real embedded PostgreSQL in that folder (migrated, exported to the environment like the CLI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The session's platform state (embedded server, dlt and Dagster folders) lives in a temp folder;
# tests never touch a developer's .dataplatform or an external database.
_SAVED = {k: os.environ.get(k) for k in ("DATAPLATFORM_HOME", "DAGSTER_HOME", "DATAPLATFORM_DATABASE_URL")}


@pytest.fixture(scope="session", autouse=True)
def platform_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("platform")
    os.environ["DATAPLATFORM_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    (home / "dagster").mkdir()
    os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    yield home
    for key, value in _SAVED.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module", autouse=True)
def bundled_dbt_files(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each end-to-end module, the dbt project's generated files follow the bundled declarations again.

    A module that runs the CLI with declarations of its own (a REST, files or hostile test system) leaves the
    generated models following them; a later module's in-process run builds from definitions made from the
    bundled declarations, and dbt would build models those definitions do not know. (dbt re-parses only when
    the files differ.)"""
    yield
    if "e2e" not in Path(str(request.fspath)).parts:
        return
    from codegen.dbt_files import generate
    from metadata.catalog import DEFAULT_FOLDER, load_catalog

    generate(load_catalog(DEFAULT_FOLDER))


@pytest.fixture(scope="session")
def warehouse(platform_home: Path) -> Iterator[str]:
    """A migrated embedded PostgreSQL for the whole session, stopped at the end."""
    from warehouse.connection import export_warehouse_env
    from warehouse.embedded import open_warehouse
    from warehouse.migrations import migrate

    with open_warehouse() as url:
        migrate(url)
        export_warehouse_env(url)
        yield url
        os.environ.pop("DATAPLATFORM_DATABASE_URL", None)


_PLATFORM_ENV = ("DATAPLATFORM_HOME", "DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT",
                 "DATAPLATFORM_PG_USER", "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME")


@pytest.fixture
def fresh_warehouse(tmp_path: Path, warehouse: str) -> Iterator[str]:
    """A second, empty embedded PostgreSQL in its own state folder, for tests that need history to
    start from nothing; the session warehouse's environment is restored afterwards."""
    from warehouse.connection import export_warehouse_env
    from warehouse.embedded import open_warehouse
    from warehouse.migrations import migrate

    saved = {k: os.environ.get(k) for k in _PLATFORM_ENV}
    os.environ["DATAPLATFORM_HOME"] = str(tmp_path / "home")
    os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    try:
        with open_warehouse() as url:
            migrate(url)
            export_warehouse_env(url)
            yield url
            os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------------------------------- notification sinks


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it accepts; it accepts the login
    `platform` / `password` (AUTH without TLS: loopback only) and also mail without a login."""

    def __init__(self, *, password: str) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.messages: list[Any] = []
        self.logins: list[str] = []
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's
                from email import message_from_bytes, policy

                sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and data.login == b"platform" and data.password == password.encode()
            if ok:
                sink.logins.append(data.login.decode())
            return AuthResult(success=ok)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticate,
                                     auth_require_tls=False)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class WebhookSink:
    """A Slack-compatible incoming webhook on loopback: keeps each POST's path and JSON body; answers `status`."""

    def __init__(self, *, status: int = 200) -> None:
        import http.server
        import json as json_module
        import threading

        self.posts: list[tuple[str, Any]] = []
        self.status = status
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.posts.append((self.path, json_module.loads(body)))
                self.send_response(sink.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/XXXXsecretpath"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


SMTP_PASSWORD = "smtp-Pa55-for-tests"


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback for the test; its login password is `SMTP_PASSWORD`."""
    with SmtpSink(password=SMTP_PASSWORD) as sink:
        yield sink


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    """A Slack-compatible incoming webhook on loopback for the test."""
    with WebhookSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def module_smtp_sink() -> Iterator[SmtpSink]:
    """`smtp_sink` shared by a module's tests (an e2e module runs the pipeline once, then asserts)."""
    with SmtpSink(password=SMTP_PASSWORD) as sink:
        yield sink


@pytest.fixture(scope="module")
def module_webhook_sink() -> Iterator[WebhookSink]:
    with WebhookSink() as sink:
        yield sink
