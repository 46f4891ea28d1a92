"""The Vault secret store (secret_store.vault) over HTTP, against the KV v2 stand-in the test starts on
loopback (tests/vault_kv_standin.py), or a real Vault when VAULT_ADDR (+ VAULT_TOKEN) is set: each test
writes its own secrets under a fresh prefix first. `dataplatform validate` with the Vault store: a missing
secret is named by its key and path, never by a value; Vault unreachable or refusing is one message naming
its address, exit code 6."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from vault_kv_standin import VaultUnderTest, vault_under_test

from cli.main import EXIT_INVALID, EXIT_OK, EXIT_SERVICE, main
from secret_store.base import MissingSecretError, SecretStoreUnavailableError, resolve_secrets
from secret_store.choice import platform_secret_store
from secret_store.env import EnvSecretStore
from secret_store.redact import redact
from secret_store.vault import InvalidSecretKeyError, VaultSecretStore, key_problem

VALUE = "vault-Value-8Qz!x%2F"  # a character percent-encoding changes, and a slash when decoded


@pytest.fixture
def vault() -> Iterator[VaultUnderTest]:
    with vault_under_test() as v:
        yield v


def store_of(vault: VaultUnderTest, **overrides: str) -> VaultSecretStore:
    options = {"address": vault.address, "token": vault.token, "mount": vault.mount, "prefix": vault.prefix}
    return VaultSecretStore(**{**options, **overrides})


def exit_code(argv: list[str]) -> int:
    """`dataplatform ...` in-process: invalid metadata ends it with SystemExit, as in a shell."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_key_maps_to_mount_prefix_key_and_field_value(vault: VaultUnderTest) -> None:
    vault.write("tst01/api_token", {"value": VALUE, "note": "other fields are ignored"})
    store = store_of(vault)
    assert store.path("tst01/api_token") == f"{vault.prefix}/tst01/api_token"
    assert store.location("tst01/api_token") == f"{vault.mount}/{vault.prefix}/tst01/api_token"
    assert store.has("tst01/api_token") is True
    assert store.get("tst01/api_token") == VALUE
    assert resolve_secrets({"token": {"type": "secret", "key": "tst01/api_token"}, "n": 1}, store) == {
        "token": VALUE, "n": 1}
    assert redact(f"Authorization: {VALUE}") == "Authorization: ***"  # resolved values are masked from now on


def test_each_secret_is_read_from_vault_once_per_store(vault: VaultUnderTest) -> None:
    vault.write("tst01/api_token", {"value": VALUE})
    store = store_of(vault)
    assert [store.has("tst01/api_token"), store.get("tst01/api_token"), store.get("tst01/api_token")] == [
        True, VALUE, VALUE]
    assert store.has("tst01/absent") is False and store.has("tst01/absent") is False
    if vault.standin is None:
        pytest.skip("a real Vault does not tell the test how often it was asked")
    assert vault.standin.reads_of(vault.mount, f"{vault.prefix}/tst01/api_token") == 1
    assert vault.standin.reads_of(vault.mount, f"{vault.prefix}/tst01/absent") == 1


def test_missing_secret_and_missing_field_are_named_by_key_and_path(vault: VaultUnderTest) -> None:
    vault.write("tst01/no_value", {"password": VALUE})
    store = store_of(vault)
    with pytest.raises(MissingSecretError) as missing:
        store.get("tst01/absent")
    assert str(missing.value) == (
        f"\"secret 'tst01/absent' is not set: Vault at {vault.address} has nothing at KV v2 path "
        f"{vault.mount}/{vault.prefix}/tst01/absent (field 'value'); write it with "
        f"`vault kv put -mount={vault.mount} {vault.prefix}/tst01/absent value=...`\"")
    assert store.has("tst01/no_value") is False
    assert store.describe("tst01/no_value") == (
        f"Vault at {vault.address} has a secret at KV v2 path {vault.mount}/{vault.prefix}/tst01/no_value but no "
        f"field 'value' in it; write it with `vault kv put -mount={vault.mount} {vault.prefix}/tst01/no_value "
        "value=...`")
    assert VALUE not in str(missing.value)


@pytest.mark.parametrize("key", ["", "a//b", "../etc", "a/./b", "tst01/api token", "tst01/tök", "a/b/", "a?b"])
def test_keys_that_are_not_path_safe_are_refused(vault: VaultUnderTest, key: str) -> None:
    why = key_problem(key)
    assert why == (f"secret key {key!r} cannot name a Vault path: use '/'-separated segments of letters, digits, "
                   "'_', '-' and '.' (no empty segment, no '.' or '..')")
    with pytest.raises(InvalidSecretKeyError, match="cannot name a Vault path"):
        store_of(vault).get(key)
    if vault.standin is not None:
        assert [r for r in vault.standin.requests if "/data/" in r[1]] == []  # refused before asking Vault


def test_approle_login_reads_with_the_token_it_gets(vault: VaultUnderTest) -> None:
    if vault.role is None:
        pytest.skip("a real Vault without VAULT_ROLE_ID / VAULT_SECRET_ID: no AppRole to log in with")
    vault.write("tst01/api_token", {"value": VALUE})
    role_id, secret_id = vault.role
    store = VaultSecretStore(address=vault.address, role_id=role_id, secret_id=secret_id, mount=vault.mount,
                             prefix=vault.prefix)
    assert store.get("tst01/api_token") == VALUE
    assert redact(f"secret_id={secret_id}") == "secret_id=***"
    wrong = VaultSecretStore(address=vault.address, role_id=role_id, secret_id="not-the-secret-id",
                             mount=vault.mount, prefix=vault.prefix)
    with pytest.raises(SecretStoreUnavailableError) as refused:
        wrong.get("tst01/api_token")
    assert str(refused.value) == (
        f"Vault at {vault.address}, reading the AppRole login (auth/approle/login): refused the AppRole login "
        "(HTTP 400); check VAULT_ROLE_ID and VAULT_SECRET_ID")


def test_a_bad_token_is_one_message_naming_address_and_path_never_the_token(vault: VaultUnderTest) -> None:
    bad_token = "hvs.not-a-token-4711"
    with pytest.raises(SecretStoreUnavailableError) as refused:
        store_of(vault, token=bad_token).get("tst01/api_token")
    message = str(refused.value)
    assert message == (
        f"Vault at {vault.address}, reading KV v2 path {vault.mount}/{vault.prefix}/tst01/api_token: refused "
        f"access (HTTP 403); check VAULT_TOKEN (or VAULT_ROLE_ID / VAULT_SECRET_ID) and that its policy may read "
        f"{vault.mount}/data/{vault.prefix}/*")
    assert bad_token not in message


def test_a_token_without_read_permission_is_refused(vault: VaultUnderTest) -> None:
    if vault.standin is None:
        pytest.skip("needs a token without read permission: the stand-in makes one")
    token = vault.standin.add_token("read-nothing")
    with pytest.raises(SecretStoreUnavailableError, match=r"refused access \(HTTP 403\)"):
        store_of(vault, token=token).has("tst01/api_token")


def test_unreachable_vault_names_its_address() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SecretStoreUnavailableError) as unreachable:
        VaultSecretStore(address=address, token="hvs.unreachable-Test-token", timeout=3).get("tst01/api_token")
    assert str(unreachable.value) == (
        f"Vault at {address}, reading KV v2 path secret/dataplatform/tst01/api_token: cannot be reached "
        "(ConnectionError); is it running, and is VAULT_ADDR right?")


def test_sealed_vault_says_so(vault: VaultUnderTest) -> None:
    if vault.standin is None:
        pytest.skip("a test does not seal a real Vault")
    vault.standin.sealed = True
    with pytest.raises(SecretStoreUnavailableError) as sealed:
        store_of(vault).get("tst01/api_token")
    assert str(sealed.value) == (
        f"Vault at {vault.address}, reading KV v2 path secret/{vault.prefix}/tst01/api_token: is sealed or down "
        "(HTTP 503); unseal it (`vault operator unseal`) and try again")


def test_one_setting_chooses_the_store(monkeypatch: pytest.MonkeyPatch, vault: VaultUnderTest) -> None:
    monkeypatch.delenv("DATAPLATFORM_SECRET_STORE", raising=False)
    assert isinstance(platform_secret_store(), EnvSecretStore)
    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    store = platform_secret_store()
    assert isinstance(store, VaultSecretStore)
    assert (store.address, store.mount, store.prefix) == (vault.address, vault.mount, vault.prefix)
    monkeypatch.setenv("DATAPLATFORM_SECRET_STORE", "keepass")
    with pytest.raises(SecretStoreUnavailableError, match="'keepass' is not a secret store; use one of: env, vault"):
        platform_secret_store()
    monkeypatch.setenv("DATAPLATFORM_SECRET_STORE", "vault")
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.delenv("VAULT_ROLE_ID", raising=False)
    with pytest.raises(SecretStoreUnavailableError, match="needs VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID"):
        platform_secret_store()


# -- `dataplatform validate` with the Vault store ----------------------------------------------------------


@pytest.fixture
def validate_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: Path, vault: VaultUnderTest) -> Path:
    """The bundled declarations with TST01's source folder as the secret `tst01/source_path`, in Vault."""
    systems = json.loads((folder / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": "tst01/source_path"}
    (folder / "systems.json").write_text(json.dumps(systems))
    monkeypatch.setenv("DATAPLATFORM_METADATA_DIR", str(folder))
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))
    for name, value in vault.env().items():
        monkeypatch.setenv(name, value)
    return folder


def test_validate_names_a_missing_vault_secret_by_key_and_path(
        validate_env: Path, vault: VaultUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["validate"]) == EXIT_INVALID
    err = capsys.readouterr().err
    assert err == (
        "error: invalid metadata (1 problem(s)):\n"
        "  - systems.json: system TST01: field 'connection': secret 'tst01/source_path' is missing: Vault at "
        f"{vault.address} has nothing at KV v2 path {vault.mount}/{vault.prefix}/tst01/source_path (field 'value'); "
        f"write it with `vault kv put -mount={vault.mount} {vault.prefix}/tst01/source_path value=...`\n")
    vault.write("tst01/source_path", {"value": VALUE})
    assert exit_code(["validate"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == f"metadata in {validate_env} is valid: 1 system(s), 3 entity(ies), 2 action(s)\n"
    assert VALUE not in out + err


def test_validate_refuses_a_key_that_is_not_path_safe(
        validate_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    systems = json.loads((validate_env / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": "tst01/../other"}
    (validate_env / "systems.json").write_text(json.dumps(systems))
    assert exit_code(["validate"]) == EXIT_INVALID
    assert capsys.readouterr().err == (
        "error: invalid metadata (1 problem(s)):\n"
        "  - systems.json: system TST01: field 'connection': secret key 'tst01/../other' cannot name a Vault path: "
        "use '/'-separated segments of letters, digits, '_', '-' and '.' (no empty segment, no '.' or '..')\n")


def test_validate_with_vault_unreachable_is_one_message_and_exit_6(
        validate_env: Path, vault: VaultUnderTest, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("VAULT_ADDR", address)
    assert exit_code(["validate"]) == EXIT_SERVICE
    assert capsys.readouterr().err == (
        f"error: Vault at {address}, reading KV v2 path {vault.mount}/{vault.prefix}/tst01/source_path: cannot be "
        "reached (ConnectionError); is it running, and is VAULT_ADDR right?\n")
