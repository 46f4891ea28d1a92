"""The role setup's pure parts: the SCRAM verifier PostgreSQL stores, and the command's refusals of bad usage
(before any warehouse is started). The roles themselves are tested in tests/e2e/test_roles*.py."""

from __future__ import annotations

import base64

import pytest

from cli.main import EXIT_INVALID
from cli.main import main as cli_main
from warehouse.embedded import DATABASE_URL_ENV
from warehouse.roles import scram_verifier


def test_scram_verifier_has_postgres_form_and_never_contains_the_password() -> None:
    verifier = scram_verifier("correct horse", salt=b"0123456789abcdef")
    method, iterations_salt, keys = verifier.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = keys.split(":")
    assert (method, iterations, base64.b64decode(salt)) == ("SCRAM-SHA-256", "4096", b"0123456789abcdef")
    assert len(base64.b64decode(stored_key)) == len(base64.b64decode(server_key)) == 32
    assert "correct horse" not in verifier
    assert scram_verifier("correct horse") != scram_verifier("correct horse")  # a fresh salt each time


@pytest.mark.parametrize(("args", "message"), [
    (["--new-password", "bob"], "--new-password 'bob': not one of the platform's roles"),
    (["--owner", "someone"], "--owner/--analyst name the roles of an external warehouse"),
])
def test_setup_roles_refuses_bad_usage(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)  # the session warehouse fixture may have exported one
    assert cli_main(["setup-roles", *args]) == EXIT_INVALID
    assert message in capsys.readouterr().err
