"""The Vault secret store: HashiCorp Vault's KV version 2 engine, read through hvac.

The rule from a secret reference to Vault: `{"type": "secret", "key": "tst01/api_token"}` is the field
`value` of the KV v2 secret at `<mount>/<prefix>/tst01/api_token` (mount DATAPLATFORM_VAULT_MOUNT,
default `secret`; prefix DATAPLATFORM_VAULT_PREFIX, default `dataplatform`), written with
`vault kv put -mount=secret dataplatform/tst01/api_token value=...`. A key is one or more `/`-separated
segments of letters, digits, `_`, `-` and `.` (not `.` or `..` alone): anything else could name another
path than the one it reads as, and is refused.

The store logs in once (a token from VAULT_TOKEN, or AppRole with VAULT_ROLE_ID / VAULT_SECRET_ID) and
reads each secret at most once: a run asks for the same key from every step, and Vault is asked once.
The token and every value read are registered with `secret_store.redact`, so no message can show them.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

import hvac
import hvac.exceptions
import requests

from secret_store.base import MissingSecretError, SecretStoreUnavailableError
from secret_store.redact import remember_secret

ADDRESS_ENV, TOKEN_ENV = "VAULT_ADDR", "VAULT_TOKEN"
ROLE_ID_ENV, SECRET_ID_ENV = "VAULT_ROLE_ID", "VAULT_SECRET_ID"
MOUNT_ENV, PREFIX_ENV = "DATAPLATFORM_VAULT_MOUNT", "DATAPLATFORM_VAULT_PREFIX"
DEFAULT_MOUNT, DEFAULT_PREFIX = "secret", "dataplatform"
FIELD = "value"
TIMEOUT_SECONDS = 10

_SEGMENT = re.compile(r"[A-Za-z0-9_.-]+")


def key_problem(key: str) -> str | None:
    """Why `key` cannot name a Vault path, or None."""
    segments = key.split("/")
    if not key or any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments):
        return (f"secret key {key!r} cannot name a Vault path: use '/'-separated segments of letters, digits, "
                "'_', '-' and '.' (no empty segment, no '.' or '..')")
    return None


class InvalidSecretKeyError(MissingSecretError):
    pass


@dataclass(frozen=True)
class _Read:
    value: str | None  # None: no secret at the path, or no field `value` in it
    has_secret: bool


class VaultSecretStore:
    """Secrets from Vault's KV v2 engine (see the module docstring for the key -> path rule)."""

    def __init__(self, *, address: str, token: str | None = None, role_id: str | None = None,
                 secret_id: str | None = None, mount: str = DEFAULT_MOUNT, prefix: str = DEFAULT_PREFIX,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        if not address:
            raise SecretStoreUnavailableError(f"the Vault secret store needs {ADDRESS_ENV} (e.g. http://vault:8200)")
        if not token and not (role_id and secret_id):
            raise SecretStoreUnavailableError(
                f"the Vault secret store at {address} needs {TOKEN_ENV}, or {ROLE_ID_ENV} and {SECRET_ID_ENV} "
                "for an AppRole login")
        for credential in (token, secret_id):
            remember_secret(credential)
        self.address = address.rstrip("/")
        self.mount, self.prefix = mount.strip("/"), prefix.strip("/")
        self._role = (role_id, secret_id) if not token else None
        self._client = hvac.Client(url=self.address, token=token, timeout=timeout)
        self._logged_in = bool(token)
        self._cache: dict[str, _Read] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> VaultSecretStore:
        env = os.environ
        return cls(address=env.get(ADDRESS_ENV, ""), token=env.get(TOKEN_ENV) or None,
                   role_id=env.get(ROLE_ID_ENV) or None, secret_id=env.get(SECRET_ID_ENV) or None,
                   mount=env.get(MOUNT_ENV) or DEFAULT_MOUNT, prefix=env.get(PREFIX_ENV, DEFAULT_PREFIX))

    def path(self, key: str) -> str:
        """The secret's path under the mount (what `vault kv put -mount=<mount>` takes)."""
        why = key_problem(key)
        if why:
            raise InvalidSecretKeyError(why)
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"{self.mount}/{self.path(key)}"

    def key_problem(self, key: str) -> str | None:
        return key_problem(key)

    def has(self, key: str) -> bool:
        return self._read(key).value is not None

    def get(self, key: str) -> str:
        read = self._read(key)
        if read.value is None:
            raise MissingSecretError(f"secret {key!r} is not set: {self.describe(key)}")
        return read.value

    def describe(self, key: str) -> str:
        why = key_problem(key)
        if why:
            return why
        read = self._cache.get(key)
        path = f"KV v2 path {self.location(key)}"
        found = (f"has a secret at {path} but no field '{FIELD}' in it" if read and read.has_secret
                 else f"has nothing at {path} (field '{FIELD}')")
        return (f"Vault at {self.address} {found}; write it with "
                f"`vault kv put -mount={self.mount} {self.path(key)} {FIELD}=...`")

    def _read(self, key: str) -> _Read:
        with self._lock:  # steps of one run may ask at once: Vault is still asked once per key
            if key not in self._cache:
                self._cache[key] = self._fetch(key)
            return self._cache[key]

    def _login(self) -> None:
        if self._logged_in:
            return
        assert self._role is not None
        role_id, secret_id = self._role
        try:
            response = self._client.auth.approle.login(role_id=role_id, secret_id=secret_id)
        except (hvac.exceptions.VaultError, requests.RequestException) as err:
            raise self._unavailable(err, "the AppRole login (auth/approle/login)") from None
        remember_secret(response["auth"]["client_token"])
        self._logged_in = True

    def _fetch(self, key: str) -> _Read:
        path = self.path(key)
        self._login()
        try:
            response = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return _Read(value=None, has_secret=False)
        except (hvac.exceptions.VaultError, requests.RequestException) as err:
            raise self._unavailable(err, f"KV v2 path {self.mount}/{path}") from None
        data = (response.get("data") or {}).get("data") or {}
        value = data.get(FIELD)
        if value is not None:
            value = str(value)
            remember_secret(value)
        return _Read(value=value, has_secret=True)

    def _unavailable(self, err: Exception, what: str) -> SecretStoreUnavailableError:
        """One message naming the address and the path, and what to do; never a token or a value."""
        if isinstance(err, requests.RequestException):
            reason = f"cannot be reached ({type(err).__name__}); is it running, and is {ADDRESS_ENV} right?"
        elif isinstance(err, hvac.exceptions.VaultDown):
            reason = "is sealed or down (HTTP 503); unseal it (`vault operator unseal`) and try again"
        elif isinstance(err, hvac.exceptions.VaultNotInitialized):
            reason = "is not initialized (HTTP 501); run `vault operator init` first"
        elif isinstance(err, hvac.exceptions.InvalidRequest) and "login" in what:
            reason = f"refused the AppRole login (HTTP 400); check {ROLE_ID_ENV} and {SECRET_ID_ENV}"
        elif isinstance(err, hvac.exceptions.Forbidden | hvac.exceptions.Unauthorized):
            reason = (f"refused access (HTTP {403 if isinstance(err, hvac.exceptions.Forbidden) else 401}); "
                      f"check {TOKEN_ENV} (or {ROLE_ID_ENV} / {SECRET_ID_ENV}) and that its policy may read "
                      f"{self.mount}/data/{self.prefix + '/' if self.prefix else ''}*")
        else:
            reason = f"answered with an error ({type(err).__name__})"
        return SecretStoreUnavailableError(f"Vault at {self.address}, reading {what}: {reason}")
