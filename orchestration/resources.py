"""What the assets are handed by Dagster: the warehouse and the secret store (the seam a Vault store plugs into)."""

from __future__ import annotations

import dagster as dg
import psycopg

from secret_store.base import SecretStore
from secret_store.env import EnvSecretStore
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
    """Where the secrets of the systems' connections are resolved, at run time only."""

    def store(self) -> SecretStore:
        return EnvSecretStore()
