"""What the assets are handed by Dagster: the warehouse and the secret store (environment or Vault)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib.metadata import version as installed_version

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource
from packaging import version
from pydantic import PrivateAttr

from secret_store.base import SecretStore
from secret_store.choice import platform_secret_store
from warehouse.connection import warehouse_url
from warehouse.session import connect


class WarehouseResource(dg.ConfigurableResource):
    """The platform's PostgreSQL. Its URL (which holds a password) is never resource config, so the UI
    never shows it: it is the one the `dataplatform` command exported to the process's environment."""

    def url(self) -> str:
        return warehouse_url()

    def connect(self) -> psycopg.Connection:
        """An autocommit connection: every audit write is its own transaction unless the caller opens one."""
        return connect(self.url(), autocommit=True)


class SecretStoreResource(dg.ConfigurableResource):
    """Where the secrets of the systems' connections are resolved, at run time only: the store
    DATAPLATFORM_SECRET_STORE names (secret_store.choice). One store per run (per step process), so each
    secret is read from Vault once however many steps ask."""

    _store: SecretStore | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._store = platform_secret_store()

    def store(self) -> SecretStore:
        if self._store is None:  # called outside a run (tests, direct invocation)
            self._store = platform_secret_store()
        return self._store


class PlatformDbtResource(DbtCliResource):
    """dbt as a subprocess, without the two things DbtCliResource does in this process before each invocation.

    - `dbt --version` in a subprocess (a second dbt start-up, ~1.5 s): the dbt it runs is the one installed in
      this environment (definitions.DBT_EXECUTABLE), so its version is the installed package's.
    - a dbt adapter built in this process (loading the project's macros and a connection handle, ~2 s and
      the memory of dbt's parser): dagster-dbt needs it only to fetch column metadata or row counts from the
      warehouse, which the platform does not ask it for (the dbt step counts rows itself).
    """

    @functools.cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None
