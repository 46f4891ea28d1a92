"""What the end-to-end tests share to set up a platform of their own: a fresh migrated database on the session's
server, the bundled declarations plus a test system's, and rows read back as dicts (instants in UTC)."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from metadata.catalog import DEFAULT_FOLDER
from warehouse.connection import DATABASE_URL_ENV, export_warehouse_env
from warehouse.migrations import migrate

WAREHOUSE_ENV = ("DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER", "DATAPLATFORM_PG_PASSWORD",
                 "DATAPLATFORM_PG_DBNAME")  # what export_warehouse_env sets besides the URL

HERE = Path(__file__).resolve().parent


def database_url(url: str, name: str) -> str:
    """`url` pointed at database `name` on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def fresh_database(url: str, name: str) -> str:
    """A fresh, migrated database `name` on the server of `url` (an old one of that name is dropped); its URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")
        conn.execute(f"create database {name}")
    db_url = database_url(url, name)
    migrate(db_url)
    return db_url


def rows(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    """The query's rows as dicts; timestamps with time zone come back in UTC whatever the server's zone."""
    with psycopg.connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        conn.execute("set TimeZone = 'UTC'")
        return cur.execute(query, params).fetchall()


@contextlib.contextmanager
def platform_environment(url: str, variables: dict[str, str]) -> Iterator[None]:
    """This process's environment as the CLI's or a code server's for the warehouse at `url` (`variables` set,
    the warehouse exported as export_warehouse_env does), restored as it was when the block ends."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in variables.items():
            patch.setenv(key, value)
        for key in (DATABASE_URL_ENV, *WAREHOUSE_ENV):  # recorded now, so what export_warehouse_env sets is undone
            patch.delenv(key, raising=False)
        export_warehouse_env(url)
        yield


def drop_source_database(server_url: str, name: str) -> None:
    """Drop a test's source database on the server and the replication slots made in it (a slot keeps its
    database from being dropped)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = %s",
                     (name,))
        conn.execute(f"drop database if exists {name} with (force)")


class OneSecret:
    """A secret store holding one secret: what `load_catalog` needs to validate a test system's declarations."""

    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value

    def key_problem(self, key: str) -> str | None:
        return None

    def has(self, key: str) -> bool:
        return key == self.key

    def get(self, key: str) -> str:
        return self.value

    def describe(self, key: str) -> str:
        return key


def declarations_with(tmp_path: Path, test_folder: str,
                      adjust: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A copy of the bundled declarations with the systems and entities of tests/e2e/<test_folder> added;
    `adjust` may change each added system (e.g. point its connection at the test's server)."""
    folder = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, folder)
    for key in ("systems", "entities"):
        data = json.loads((folder / f"{key}.json").read_text())
        added = json.loads((HERE / test_folder / f"{key}.json").read_text())[key]
        if adjust is not None and key == "systems":
            for system in added:
                adjust(system)
        data[key] += added
        (folder / f"{key}.json").write_text(json.dumps(data, indent=2))
    return folder
