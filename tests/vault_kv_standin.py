"""A stand-in of HashiCorp Vault's HTTP API, as far as the platform uses it, for tests on machines where
no Vault can be installed. It follows Vault's documented API and answers:

- `GET /v1/sys/health`: 200 `{"initialized": true, "sealed": false, ...}`, 503 with `sealed: true` when sealed;
- `POST /v1/auth/approle/login` `{"role_id", "secret_id"}`: 200 with `auth.client_token`, 400 for a wrong pair;
- `GET /v1/<mount>/data/<path>` (KV v2 read): 200 `{"data": {"data": {...}, "metadata": {...}}, ...}`,
  404 `{"errors": []}` when there is no secret at the path;
- `POST /v1/<mount>/data/<path>` `{"data": {...}}` (KV v2 write): 200 with the new version's metadata;
- every request but health and login needs a known `X-Vault-Token`: 403 `{"errors": ["permission denied"]}`
  otherwise, and for a token whose policy does not allow the operation;
- when sealed, every request but health gets 503 `{"errors": ["Vault is sealed"]}`.

Started on loopback in a thread by the tests (`running_vault()`); `requests` records what was asked.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ROOT, READ_NOTHING = "root", "read-nothing"  # the two policies a token may have


@dataclass
class VaultState:
    root_token: str = field(default_factory=lambda: "hvs." + secrets.token_urlsafe(24))
    tokens: dict[str, str] = field(default_factory=dict)  # token -> policy
    roles: dict[str, str] = field(default_factory=dict)  # AppRole role_id -> secret_id
    kv_mounts: set[str] = field(default_factory=lambda: {"secret"})
    secrets: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # (mount, path) -> versions
    sealed: bool = False
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) in order
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tokens[self.root_token] = ROOT

    def add_role(self) -> tuple[str, str]:
        role_id, secret_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.roles[role_id] = secret_id
        return role_id, secret_id

    def add_token(self, policy: str) -> str:
        token = "hvs." + secrets.token_urlsafe(24)
        self.tokens[token] = policy
        return token

    def reads_of(self, mount: str, path: str) -> int:
        return self.requests.count(("GET", f"/v1/{mount}/data/{path}"))


def _envelope(data: Any = None, auth: Any = None) -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 0,
            "data": data, "wrap_info": None, "warnings": None, "auth": auth, "mount_type": "kv" if data else ""}


def _metadata(version: int, created: str) -> dict[str, Any]:
    return {"created_time": created, "custom_metadata": None, "deletion_time": "", "destroyed": False,
            "version": version}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet, like a server under test
        pass

    def _send(self, status: int, body: dict[str, Any] | None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _handle(self, method: str) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            state.requests.append((method, path))
        if path == "/v1/sys/health":
            body = {"initialized": True, "sealed": state.sealed, "standby": False, "performance_standby": False,
                    "server_time_utc": int(datetime.now(UTC).timestamp()), "version": "1.17.0-standin"}
            return self._send(503 if state.sealed else 200, body)
        if state.sealed:
            return self._send(503, {"errors": ["Vault is sealed"]})
        if path == "/v1/auth/approle/login" and method == "POST":
            body = self._body()
            if state.roles.get(body.get("role_id", "")) != body.get("secret_id") or not body.get("secret_id"):
                return self._send(400, {"errors": ["invalid role or secret ID"]})
            token = state.add_token(ROOT)
            auth = {"client_token": token, "accessor": str(uuid.uuid4()), "policies": ["default", "dataplatform"],
                    "token_policies": ["default", "dataplatform"], "metadata": {"role_name": "dataplatform"},
                    "lease_duration": 3600, "renewable": True, "entity_id": str(uuid.uuid4()),
                    "token_type": "service", "orphan": True}
            return self._send(200, _envelope(auth=auth))
        policy = state.tokens.get(self.headers.get("X-Vault-Token", ""))
        if policy is None:
            return self._send(403, {"errors": ["permission denied"]})
        mount, _, rest = path.removeprefix("/v1/").partition("/data/")
        if mount not in state.kv_mounts or not rest:
            return self._send(404, {"errors": [f"no handler for route {path!r}. route entry not found."]})
        if policy != ROOT:
            return self._send(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
        key = (mount, rest)
        if method == "GET":
            versions = state.secrets.get(key)
            if not versions:
                return self._send(404, {"errors": []})
            latest = versions[-1]
            return self._send(200, _envelope({"data": latest["data"], "metadata": latest["metadata"]}))
        body = self._body()
        if not isinstance(body.get("data"), dict):
            return self._send(400, {"errors": ["no data provided"]})
        with state.lock:
            versions = state.secrets.setdefault(key, [])
            meta = _metadata(len(versions) + 1, datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            versions.append({"data": body["data"], "metadata": meta})
        return self._send(200, _envelope(meta))

    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802 - Vault takes PUT as POST
        self._handle("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: VaultState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@dataclass(frozen=True)
class RunningVault:
    address: str
    state: VaultState


@contextmanager
def running_vault() -> Iterator[RunningVault]:
    """A stand-in Vault on a free loopback port for the duration of the block."""
    server = _Server(VaultState())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vault-standin",
                              daemon=True)
    thread.start()
    try:
        yield RunningVault(address=f"http://127.0.0.1:{server.server_address[1]}", state=server.state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class VaultUnderTest:
    """The Vault a test talks to: the stand-in, or a real one (VAULT_ADDR + VAULT_TOKEN set). Tests write
    their own secrets under `prefix`, a fresh path, first."""

    address: str
    token: str
    prefix: str
    mount: str
    standin: VaultState | None  # None: a real Vault
    role: tuple[str, str] | None  # an AppRole (role_id, secret_id) allowed to read, when one is known

    def write(self, key: str, data: dict[str, Any]) -> None:
        import hvac

        client = hvac.Client(url=self.address, token=self.token)
        client.secrets.kv.v2.create_or_update_secret(path=f"{self.prefix}/{key}", secret=data, mount_point=self.mount)

    def env(self) -> dict[str, str]:
        """The platform's settings for this Vault (token login)."""
        return {"DATAPLATFORM_SECRET_STORE": "vault", "VAULT_ADDR": self.address, "VAULT_TOKEN": self.token,
                "DATAPLATFORM_VAULT_MOUNT": self.mount, "DATAPLATFORM_VAULT_PREFIX": self.prefix}


@contextmanager
def vault_under_test() -> Iterator[VaultUnderTest]:
    """A real Vault when VAULT_ADDR is set (with VAULT_TOKEN; VAULT_ROLE_ID / VAULT_SECRET_ID for the AppRole
    test; DATAPLATFORM_TEST_VAULT_MOUNT, default `secret`), the stand-in otherwise."""
    import os

    prefix = f"dataplatform-test-{uuid.uuid4().hex[:12]}"
    address = os.environ.get("VAULT_ADDR")
    if address:
        token = os.environ.get("VAULT_TOKEN", "")
        if not token:
            raise RuntimeError("VAULT_ADDR is set for the tests: set VAULT_TOKEN too (one that may write the mount)")
        role_id, secret_id = os.environ.get("VAULT_ROLE_ID"), os.environ.get("VAULT_SECRET_ID")
        yield VaultUnderTest(address=address.rstrip("/"), token=token, prefix=prefix,
                             mount=os.environ.get("DATAPLATFORM_TEST_VAULT_MOUNT", "secret"), standin=None,
                             role=(role_id, secret_id) if role_id and secret_id else None)
        return
    with running_vault() as vault:
        yield VaultUnderTest(address=vault.address, token=vault.state.root_token, prefix=prefix, mount="secret",
                             standin=vault.state, role=vault.state.add_role())
