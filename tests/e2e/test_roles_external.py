"""Roles on an external warehouse: the machine's PostgreSQL 15 (127.0.0.1:5432, trust auth as postgres).

`dataplatform setup-roles`, given a superuser's URL, creates the owner and analyst roles in a fresh
database and hands over what a superuser made there; the platform then runs end to end given only the
owner's URL. Trust auth does not check passwords, so this tests privileges; the embedded tests
(test_roles.py) test the passwords. Role names are unique per run: roles are shared by the whole server.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from warehouse.roles import PLATFORM_SCHEMAS

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SERVER = "postgresql://postgres@127.0.0.1:5432"
_INHERITED = ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER",
              "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME")


@dataclass(frozen=True)
class External:
    admin_url: str
    owner: str
    analyst: str
    home: Path

    def url_as(self, role: str, password: str = "") -> str:
        return self.admin_url.replace("postgres@", f"{role}:{password}@" if password else f"{role}@", 1)


def _reachable() -> None:
    try:
        psycopg.connect(f"{SERVER}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL 15 on 127.0.0.1:5432 (trust auth as postgres) is not reachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test: start that server")
        pytest.skip(reason)


@pytest.fixture
def external(tmp_path: Path) -> Iterator[External]:
    """A fresh database on the machine's server with what a superuser-run platform left in it; it and the
    roles the test creates are dropped afterwards."""
    _reachable()
    suffix = secrets.token_hex(4)
    database, owner, analyst = f"dp_roles_{suffix}", f"dp_owner_{suffix}", f"dp_analyst_{suffix}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))
    try:
        with psycopg.connect(f"{SERVER}/{database}", autocommit=True) as conn:
            conn.execute("create schema gold")
            conn.execute("create table gold.legacy as select 1 as x")
            conn.execute("create schema landing")
            conn.execute("create table landing.legacy (id bigint generated always as identity)")
        yield External(f"{SERVER}/{database}", owner, analyst, tmp_path / "home")
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
            for role in (owner, analyst):
                conn.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))


def _cli(home: Path, url: str, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), DATAPLATFORM_DATABASE_URL=url,
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO, text=True, timeout=600,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout


def _owners(admin_url: str) -> set[str]:
    with psycopg.connect(admin_url) as conn:
        return {row[0] for row in conn.execute(
            "select pg_get_userbyid(c.relowner) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = any(%(s)s) union select pg_get_userbyid(nspowner) from pg_namespace"
            " where nspname = any(%(s)s)", {"s": list(PLATFORM_SCHEMAS)})}


def test_setup_roles_then_the_platform_runs_as_the_owner_only(external: External, tmp_path: Path) -> None:
    (external.home / "dagster").mkdir(parents=True)
    passwords = tmp_path / "passwords"
    args = ("setup-roles", "--owner", external.owner, "--analyst", external.analyst, "--password-dir", str(passwords))
    code, output = _cli(external.home, external.admin_url, *args)
    assert code == 0, output
    files = {role: passwords / f"{role}.password" for role in (external.owner, external.analyst)}
    for file in files.values():
        assert file.stat().st_mode & 0o777 == 0o600
        assert file.read_text().strip() not in output
    assert f"postgresql://{external.owner}:***@127.0.0.1:5432/" in output
    assert "generated now" in output
    assert "handed 2 existing object(s)" in output  # the identity sequence follows its table
    assert _owners(external.admin_url) == {external.owner}

    generated = {role: file.read_text() for role, file in files.items()}
    again_code, again = _cli(external.home, external.admin_url, *args)  # idempotent; existing passwords kept
    assert again_code == 0 and again.count("password: unchanged") == 2, again
    assert {role: file.read_text() for role, file in files.items()} == generated

    owner_url = external.url_as(external.owner, files[external.owner].read_text().strip())
    refused_code, refused = _cli(external.home, owner_url, "setup-roles")
    assert refused_code == 2 and f"the role '{external.owner}' may not create roles" in refused, refused

    code, output = _cli(external.home, owner_url, "demo", "--days", "1")  # dlt, GX, dbt, audit: as the owner only
    assert code == 0, output[-5000:]
    assert "superuser" not in output
    assert _owners(external.admin_url) == {external.owner}

    with psycopg.connect(external.url_as(external.analyst), autocommit=True) as analyst:
        assert analyst.execute("select count(*) from gold.owner_vehicles").fetchone()[0] > 0  # made after setup
        assert analyst.execute("select x from gold.legacy").fetchone() == (1,)
        for statement in ("select * from silver.tst01_owner", "select * from bronze.tst01_vehicle",
                          "select * from landing.tst01_owners", "select * from audit.system_run",
                          "insert into gold.legacy values (2)", "create table gold.mine (x int)",
                          "create temp table mine (x int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                analyst.execute(statement)
