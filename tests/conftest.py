"""Shared fixtures: every test session gets its own platform state folder and, when a test asks for
it, a real embedded PostgreSQL in that folder (migrated, exported to the environment like the CLI)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
