"""Which secret store this process reads: the one place that decides (DATAPLATFORM_SECRET_STORE).

`env` (the default) reads environment variables and `.env`; `vault` reads HashiCorp Vault's KV v2
engine (secret_store.vault). The CLI's validation, the Dagster resource and every test of a run ask here.
"""

from __future__ import annotations

import os

from secret_store.base import SecretStore, SecretStoreUnavailableError

STORE_ENV = "DATAPLATFORM_SECRET_STORE"
STORES = ("env", "vault")


def platform_secret_store() -> SecretStore:
    """A new store of the configured kind (each instance reads a secret at most once)."""
    kind = os.environ.get(STORE_ENV, "env").strip().lower() or "env"
    if kind == "env":
        from secret_store.env import EnvSecretStore

        return EnvSecretStore()
    if kind == "vault":
        from secret_store.vault import VaultSecretStore

        return VaultSecretStore.from_environment()
    raise SecretStoreUnavailableError(f"{STORE_ENV}={kind!r} is not a secret store; use one of: {', '.join(STORES)}")
