"""What the assets are handed by Dagster: the warehouse and the secret store (environment or Vault)."""

from __future__ import annotations

import dagster as dg
import psycopg
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
