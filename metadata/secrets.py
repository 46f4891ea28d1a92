"""Secret resolution: metadata holds `{"type": "secret", "key": "..."}`, the value comes from a store.

Values are resolved at run time only, right before a connector needs them, and never logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Protocol

from dotenv import dotenv_values

ENV_PREFIX = "DATAPLATFORM_SECRET_"


class SecretStore(Protocol):
    """Where secret values live (environment and `.env` now; Vault later)."""

    def has(self, key: str) -> bool: ...

    def get(self, key: str) -> str: ...

    def describe(self, key: str) -> str:
        """Where the value of `key` is expected, for error messages (never the value)."""
        ...


class MissingSecretError(KeyError):
    pass


class EnvSecretStore:
    """Secrets from environment variables, falling back to a `.env` file.

    The key `tst01/api_token` is read from `DATAPLATFORM_SECRET_TST01_API_TOKEN`.
    """

    def __init__(self, *, env_file: Path | None = None) -> None:
        path = env_file or Path(os.environ.get("DATAPLATFORM_ENV_FILE", ".env"))
        self._file_values = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}

    @staticmethod
    def variable(key: str) -> str:
        return ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", key.upper()).strip("_")

    def has(self, key: str) -> bool:
        name = self.variable(key)
        return name in os.environ or name in self._file_values

    def get(self, key: str) -> str:
        name = self.variable(key)
        if name in os.environ:
            return os.environ[name]
        if name in self._file_values:
            return self._file_values[name]
        raise MissingSecretError(f"secret {key!r} is not set: {self.describe(key)}")

    def describe(self, key: str) -> str:
        return f"set the environment variable {self.variable(key)} (or put it in .env)"


def is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "secret" and "key" in value


def secret_keys(value: Any) -> list[str]:
    """Every secret key referenced anywhere inside `value`."""
    if is_secret_ref(value):
        return [value["key"]]
    if isinstance(value, dict):
        return [k for v in value.values() for k in secret_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in secret_keys(v)]
    return []


def resolve_secrets(value: Any, store: SecretStore) -> Any:
    """A copy of `value` with every secret reference replaced by its value from `store`."""
    if is_secret_ref(value):
        return store.get(value["key"])
    if isinstance(value, dict):
        return {k: resolve_secrets(v, store) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, store) for v in value]
    return value
