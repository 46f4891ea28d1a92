"""Least privilege in the warehouse, on a real embedded PostgreSQL (passwords checked: SCRAM) after a real
run of the pipeline: the platform's objects all belong to the non-superuser owner role; the analyst reads
gold (and its comments) and nothing else, and writes nothing. A warehouse created by a superuser-run
platform is handed over to the owner on its next start."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cli.main import main as cli_main
from ingestion.test_system.generator import simulate, write_day
from warehouse.connection import connection_params, embedded_server, platform_url
from warehouse.embedded import DATABASE_URL_ENV, EmbeddedPostgres, open_warehouse
from warehouse.migrations import MIGRATIONS, migrate
from warehouse.roles import ANALYST_ROLE, OWNER_ROLE, PLATFORM_SCHEMAS

pytestmark = pytest.mark.e2e

DENIED_READS = ["silver.tst01_owner", "bronze.tst01_owner", "landing.tst01_owners", "landing._dlt_loads",
                "audit.system_run", "audit.landed_batch", "audit.cursor"]
DENIED_WRITES = ["insert into gold.owner_vehicles (owner_id) values (1)", "update gold.owner_vehicles set city = 'x'",
                 "delete from gold.owner_vehicles", "truncate gold.owner_vehicles",
                 "create table gold.mine (x int)", "create table public.mine (x int)", "create temp table mine (x int)",
                 "create schema mine", "drop table gold.owner_vehicles",
                 "alter table gold.owner_vehicles add column mine int",
                 "comment on table gold.owner_vehicles is 'mine'"]


def not_owned_by_owner(url: str) -> list[tuple[str, str, str]]:
    """Relations, types and routines in the platform's schemas whose owner is not the owner role."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            """
            select n.nspname, c.relname, pg_get_userbyid(c.relowner) from pg_class c
            join pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%(s)s) and c.relowner <> %(o)s::regrole
            union all
            select n.nspname, p.proname, pg_get_userbyid(p.proowner) from pg_proc p
            join pg_namespace n on n.oid = p.pronamespace where n.nspname = any(%(s)s) and p.proowner <> %(o)s::regrole
            union all
            select nspname, '', pg_get_userbyid(nspowner) from pg_namespace
            where nspname = any(%(s)s) and nspowner <> %(o)s::regrole
            """,
            {"s": list(PLATFORM_SCHEMAS), "o": OWNER_ROLE},
        ).fetchall()


def assert_denied(conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as denied:
        conn.execute(statement)
    assert "permission denied" in str(denied.value) or "must be owner" in str(denied.value), statement


@pytest.fixture
def ran_once(fresh_warehouse: str) -> Iterator[str]:
    """A fresh embedded warehouse after one real run of the test system (dlt, GX, dbt as the platform runs them)."""
    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    write_day(next(simulate(days=1, seed=21)), state_dir() / "sources" / "TST01")
    messages: list[str] = []
    assert run_job(system_id="TST01", echo=messages.append).success, "\n".join(messages)
    yield fresh_warehouse


def test_the_platform_runs_as_the_owner_and_owns_everything(ran_once: str) -> None:
    assert os.environ["DATAPLATFORM_PG_USER"] == OWNER_ROLE  # dbt's profile
    assert connection_params(os.environ[DATABASE_URL_ENV])["user"] == OWNER_ROLE  # dlt, GX, audit, assets
    assert not_owned_by_owner(ran_once) == []  # incl. dlt's _dlt_* tables, dbt's tables, audit and its sequence
    with psycopg.connect(ran_once) as conn:
        attributes = conn.execute("select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolcanlogin"
                                  " from pg_roles where rolname = %s", (OWNER_ROLE,)).fetchone()
        assert attributes == (False, False, False, False, True)
        grantees = conn.execute("select coalesce(string_agg(distinct grantee, ','), '') from"
                                " information_schema.role_table_grants where table_schema <> 'gold'"
                                " and table_schema = any(%s) and grantee not in (%s, 'postgres')",
                                (list(PLATFORM_SCHEMAS), OWNER_ROLE)).fetchone()
        assert grantees == ("",)  # nobody but the owner holds a privilege outside gold


def test_the_analyst_reads_gold_and_its_docs_and_nothing_else(ran_once: str) -> None:
    server = embedded_server()
    analyst_url = server.role_url(ANALYST_ROLE)
    assert server.role_password_file(ANALYST_ROLE).stat().st_mode & 0o777 == 0o600
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(analyst_url.replace(str(connection_params(analyst_url)["password"]), "wrong"))
    with psycopg.connect(analyst_url, autocommit=True) as conn:
        assert conn.execute("select current_user").fetchone() == (ANALYST_ROLE,)
        assert conn.execute("select count(*) from gold.owner_vehicles").fetchone()[0] > 0
        table_doc, column_doc = conn.execute(
            "select obj_description('gold.owner_vehicles'::regclass, 'pg_class'),"
            " col_description('gold.owner_vehicles'::regclass, 1)").fetchone()
        assert "current owner" in table_doc and "owner" in column_doc  # dbt's persist_docs
        for table in DENIED_READS:
            assert_denied(conn, f"select * from {table} limit 1")
        for statement in DENIED_WRITES:
            assert_denied(conn, statement)
        assert_denied(conn, "select pg_read_file('PG_VERSION')")
    with psycopg.connect(server.role_url(OWNER_ROLE), autocommit=True) as owner:
        owner.execute("create table gold.made_later as select 1 as x")  # a mart added after the setup
    with psycopg.connect(analyst_url) as conn:
        assert conn.execute("select x from gold.made_later").fetchone() == (1,)


def test_setup_roles_shows_how_to_connect_and_renews_a_password(
        fresh_warehouse: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    server = embedded_server()
    with psycopg.connect(server.role_url(OWNER_ROLE), autocommit=True) as owner:
        owner.execute("create table gold.owner_vehicles as select 1 as owner_id")
    old = server.role_password_file(ANALYST_ROLE).read_text().strip()
    monkeypatch.delenv(DATABASE_URL_ENV)  # as an operator runs it: no URL, the embedded warehouse
    assert cli_main(["setup-roles", "--new-password", ANALYST_ROLE]) == 0
    output = capsys.readouterr().out
    new = server.role_password_file(ANALYST_ROLE).read_text().strip()
    assert new != old
    owner_password = server.role_password_file(OWNER_ROLE).read_text().strip()
    for secret in (old, new, owner_password, server.password_file.read_text().strip()):
        assert secret not in output
    assert f"postgresql://{ANALYST_ROLE}:***@127.0.0.1:" in output and f"postgresql://{OWNER_ROLE}:***@" in output
    assert str(server.role_password_file(ANALYST_ROLE)) in output and "reads gold only" in output
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(server.role_url(ANALYST_ROLE).replace(new, old))
    with psycopg.connect(server.role_url(ANALYST_ROLE)) as conn:
        assert conn.execute("select count(*) from gold.owner_vehicles").fetchone()[0] > 0


def _old_warehouse(server: EmbeddedPostgres) -> None:
    """What a platform from before the owner role left behind: everything the superuser's, no roles."""
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute("create schema audit")
        conn.execute("create table audit.schema_migration (name text primary key, applied_at timestamptz"
                     " not null default now())")
        for path in sorted(MIGRATIONS.glob("*.sql")):
            conn.execute(path.read_text())
            conn.execute("insert into audit.schema_migration (name) values (%s)", (path.stem,))
        conn.execute("create table landing.tst01_owners (_batch_id bigint, payload jsonb)")
        conn.execute("create index on landing.tst01_owners (_batch_id)")
        conn.execute("create table landing._dlt_loads (load_id text)")
        conn.execute("create table bronze.tst01_owner (id bigint generated always as identity, name text)")
        conn.execute("create table silver.tst01_owner (version serial, id bigint)")
        conn.execute("create sequence silver.free_standing")
        conn.execute("create table gold.owner_vehicles as select 7 as owner_id")
        conn.execute("create view gold.owner_names as select owner_id from gold.owner_vehicles")
        conn.execute("create type silver.mood as enum ('ok')")
        conn.execute("create function audit.answer() returns int language sql as 'select 42'")
        for role in (OWNER_ROLE, ANALYST_ROLE):  # start() creates them now; the old platform did not
            conn.execute(f"drop role {role}")
    for role in (OWNER_ROLE, ANALYST_ROLE):
        server.role_password_file(role).unlink()


def test_a_warehouse_made_by_the_superuser_is_handed_over_to_the_owner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    server = EmbeddedPostgres(tmp_path / "home" / "postgres")
    server.start()
    try:
        _old_warehouse(server)
        server.stop()
        with open_warehouse() as url:
            assert not_owned_by_owner(url)  # as the old platform left it
            assert migrate(url) == []  # nothing to migrate: the migrations were applied by the superuser
            assert not_owned_by_owner(url) == []
            owner_url = platform_url(url)
            with psycopg.connect(owner_url, autocommit=True) as owner:
                assert owner.execute("select nextval('silver.free_standing'), audit.answer()").fetchone() == (1, 42)
                owner.execute("insert into bronze.tst01_owner (name) values ('a')")  # its identity sequence
                owner.execute("alter table silver.tst01_owner add column valid_from timestamptz")
                owner.execute("drop index landing.tst01_owners__batch_id_idx")
                owner.execute("insert into audit.cursor values ('TST01', 'owners', 'x', 1)")
            with psycopg.connect(server.role_url(ANALYST_ROLE)) as analyst:
                assert analyst.execute("select owner_id from gold.owner_names").fetchone() == (7,)
                assert_denied(analyst, "select * from silver.tst01_owner")
    finally:
        server.stop()
