"""Metadata is not code, end to end: `dataplatform validate` and two `dataplatform run`s (real dlt, dbt,
Dagster and PostgreSQL) on declarations that validate accepts but that are as awkward as they may be:

- a second system, HST01, whose columns are SQL keywords (`user` is the key, `order` is SCD1, `select`,
  `group` flattened to `group_by`), with an exploded list under a key with a space (`access list`) whose
  items have no key (so `position` is generated) and whose columns are `table` and `where`;
- free text (system name and description, entity descriptions, field descriptions) full of SQL and Jinja:
  quotes, `;`, comment markers, `$$`, `{{ ... }}`, `{% ... %}`, `env_var(...)` of the warehouse password,
  statements that would create a marker table or write a marker file;
- record values of the same kind (data, carried as JSON).

After the runs: silver holds the history of every key by value, the free text is in dbt's manifest exactly
as declared (rendered as text, not run), the marker table and file do not exist, and the password does not
appear in the manifest. Refusals of hostile names and paths are unit tests (tests/unit/test_hostile_metadata.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from warehouse_db import fresh_database, rows

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import DEFAULT_FOLDER

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "hostile_metadata"


def _payload(marker_file: Path) -> str:
    """Text that would run statements if anything pasted it into SQL or rendered it as dbt Jinja."""
    return (
        "x'); create table public.dp_pwned_sql (x int); -- "
        f"'; copy (select current_user) to '{marker_file}'; -- "
        "$$; create table public.dp_pwned_dollar (x int); $$ */ /* "
        "{{ run_query('create table public.dp_pwned_jinja (x int)') }} "
        "{% do run_query('create table public.dp_pwned_tag (x int)') %} "
        "{# a comment #} password={{ env_var('DATAPLATFORM_PG_PASSWORD') }} \\ \" }} {%"
    )


MODELS = '''
    """HST01: every column a SQL keyword, every description hostile."""

    from pydantic import BaseModel, Field

    from metadata.entity_model import EntityModel, Key, Scd1

    PAYLOAD = {payload!r}


    class Group(BaseModel):
        by: str = Field(description=PAYLOAD)


    class Account(EntityModel):
        user: Key[str] = Field(description=PAYLOAD)
        order: Scd1[int]
        select: str
        group: Group


    class Grant(EntityModel):
        table: str = Field(description=PAYLOAD)
        where: str | None = None
'''

# Values are data: they land as JSON and must come out of silver exactly as sent.
VALUE = "'; drop table audit.cursor; -- $$ {{ 1 }} \" \\"
DAY1 = [
    {"user": "alice", "order": 1, "select": VALUE, "group": {"by": "a"},
     "access list": [{"table": "t1", "where": "x = 1"}, {"table": VALUE, "where": None}]},
    {"user": "bob", "order": 2, "select": "b", "group": {"by": "b"}, "access list": []},
    {"user": "carol", "order": 3, "select": "c", "group": {"by": "c"}, "access list": [{"table": "t3"}]},
]
DAY2 = [
    {"user": "alice", "order": 1, "select": "changed", "group": {"by": "a"},  # SCD2 change: a new version
     "access list": [{"table": "t1", "where": "x = 1"}]},
    {"user": "bob", "order": 20, "select": "b", "group": {"by": "b"}, "access list": []},  # SCD1: overwritten
    {"user": "dave", "order": 4, "select": "d", "group": {"by": "d"}, "access list": []},  # carol gone: closed
]


@dataclass
class Runs:
    url: str
    payload: str
    marker_file: Path
    outputs: list[tuple[int, str]]


def _deliver(folder: Path, records: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True)
    (folder / "accounts.json").write_text(json.dumps(records, indent=1))


def _declarations(target: Path, payload: str) -> None:
    shutil.copytree(DEFAULT_FOLDER, target)
    systems = json.loads((target / "systems.json").read_text())
    systems["systems"].append({
        "id": "HST01", "name": f"Hostile {payload}", "description": payload, "type": "json_files",
        "connection": {"path": "sources/HST01", "endpoints": {"accounts": "accounts.json"}},
    })
    (target / "systems.json").write_text(json.dumps(systems, indent=2))
    entities = json.loads((target / "entities.json").read_text())
    entities["entities"] += [
        {"name": "account", "description": payload, "system_id": "HST01", "load_type": "full",
         "landing_entity": "accounts", "bronze_pattern": {"type": "flatten"}, "model": "hostile_models:Account"},
        {"name": "account_grant", "description": payload, "system_id": "HST01", "load_type": "full",
         "landing_entity": "accounts", "model": "hostile_models:Grant",
         "bronze_pattern": {"type": "explode", "list_path": "access list", "parent_entity": "account"}},
    ]
    (target / "entities.json").write_text(json.dumps(entities, indent=2))


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def runs(warehouse: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    base = tmp_path_factory.mktemp("hostile")
    home, marker_file = base / "home", base / "dp_pwned.txt"
    payload = _payload(marker_file)
    (base / "modules").mkdir()
    (base / "modules" / "hostile_models.py").write_text(textwrap.dedent(MODELS.format(payload=payload)))
    _declarations(base / "declarations", payload)
    write_day(next(simulate(days=1, seed=3)), home / "sources" / "TST01")  # gold needs TST01's silver
    _deliver(home / "sources" / "HST01" / "2026-01-01", DAY1)

    url = fresh_database(warehouse, DATABASE)
    env = {**os.environ, "DATAPLATFORM_DATABASE_URL": url, "DATAPLATFORM_HOME": str(home),
           "DAGSTER_HOME": str(home / "dagster"), "DATAPLATFORM_METADATA_DIR": str(base / "declarations"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(base / "modules")])}
    outputs = [_cli(env, "validate"), _cli(env, "run")]
    _deliver(home / "sources" / "HST01" / "2026-01-02", DAY2)
    outputs.append(_cli(env, "run", "--system", "HST01"))
    try:
        yield Runs(url, payload, marker_file, outputs)
    finally:
        # The dbt project's generated files now follow the hostile declarations: give them back the bundled ones.
        from codegen.dbt_files import generate
        from metadata.catalog import load_catalog

        generate(load_catalog(DEFAULT_FOLDER))


def test_validate_accepts_and_both_runs_succeed(runs: Runs) -> None:
    for code, output in runs.outputs:
        assert code == 0, output


def test_keyword_columns_hold_the_history_by_value(runs: Runs) -> None:
    versions = rows(runs.url, 'select "user", "order", "select", group_by, valid_from::date::text as since,'
                               ' valid_to::date::text as until from silver.hst01_account order by "user", valid_from')
    assert [tuple(v.values()) for v in versions] == [
        ("alice", 1, VALUE, "a", "2026-01-01", "2026-01-02"),
        ("alice", 1, "changed", "a", "2026-01-02", None),
        ("bob", 20, "b", "b", "2026-01-01", None),  # SCD1: the new order overwrote the only version
        ("carol", 3, "c", "c", "2026-01-01", "2026-01-02"),  # full load: missing on day 2, closed
        ("dave", 4, "d", "d", "2026-01-02", None),
    ]
    grants = rows(runs.url, 'select "user", position, "table", "where", valid_to is null as current'
                             ' from silver.hst01_account_grant order by "user", position, valid_from')
    assert [tuple(g.values()) for g in grants] == [
        ("alice", 1, "t1", "x = 1", True),
        ("alice", 2, VALUE, None, False),  # gone from the list on day 2
        ("carol", 1, "t3", None, False),
    ]


def test_the_key_called_user_is_quoted_in_silver_s_index(runs: Runs) -> None:
    indexes = [r["indexdef"] for r in rows(
        runs.url, "select indexdef from pg_indexes where schemaname = 'silver' and tablename = 'hst01_account'")]
    assert any('("user") WHERE (valid_to IS NULL)' in i and "UNIQUE" in i for i in indexes), indexes


def test_no_statement_but_the_platform_s_own_ran(runs: Runs) -> None:
    assert rows(runs.url, "select relname from pg_class where relname like 'dp_pwned%'") == []
    assert not runs.marker_file.exists()
    assert rows(runs.url, "select to_regclass('audit.cursor') is not null as present")[0]["present"]


def test_free_text_is_in_dbt_s_manifest_as_declared(runs: Runs) -> None:
    manifest = json.loads((ROOT / "dbt_project" / "target" / "manifest.json").read_text())
    account = manifest["nodes"]["model.dataplatform.silver__hst01_account"]
    assert account["description"].startswith(runs.payload + " Silver: SCD2 history")
    assert account["columns"]["user"]["description"] == runs.payload
    assert account["columns"]["group_by"]["description"] == runs.payload
    grant = manifest["nodes"]["model.dataplatform.bronze__hst01_account_grant"]
    assert grant["columns"]["table"]["description"] == runs.payload
    source = manifest["sources"]["source.dataplatform.landing.hst01_accounts"]
    assert f"Hostile {runs.payload}" in source["description"]
    password = urlsplit(runs.url).password
    assert password and password not in json.dumps(manifest)
