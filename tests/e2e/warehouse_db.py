"""What the end-to-end tests share to set up a platform of their own: a fresh migrated database on the session's
server, the bundled declarations plus a test system's, and rows read back as dicts (instants in UTC)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from metadata.catalog import DEFAULT_FOLDER
from warehouse.migrations import migrate

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
