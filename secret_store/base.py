"""Secret references and their resolution: metadata holds `{"type": "secret", "key": "..."}`, a store
holds the value. Values are resolved at run time only, right before a connector needs them, and never logged.
"""

from __future__ import annotations

from typing import Any, Protocol

from secret_store.redact import remember_secret


class SecretStore(Protocol):
    """Where secret values live: environment and `.env` (secret_store.env) or Vault (secret_store.vault);
    secret_store.choice picks one."""

    def key_problem(self, key: str) -> str | None:
        """Why `key` cannot name a secret in this store, or None."""
        ...

    def has(self, key: str) -> bool: ...

    def get(self, key: str) -> str: ...

    def describe(self, key: str) -> str:
        """Where the value of `key` is expected, for error messages (never the value)."""
        ...


class MissingSecretError(KeyError):
    pass


class SecretStoreUnavailableError(RuntimeError):
    """The store cannot be asked at all (not configured, unreachable, sealed, access refused): one message
    naming where and what to do, never a credential."""


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
    """A copy of `value` with every secret reference replaced by its value from `store`; each value is
    remembered, so that every message this process writes masks it (secret_store.redact)."""
    if is_secret_ref(value):
        resolved = store.get(value["key"])
        remember_secret(resolved)
        return resolved
    if isinstance(value, dict):
        return {k: resolve_secrets(v, store) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, store) for v in value]
    return value
