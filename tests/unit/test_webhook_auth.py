"""The service's credential checks: a missing credential (401) is told apart from a wrong one (403), and neither
message quotes what was sent or expected."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from api.auth import CredentialsInvalid, CredentialsMissing, bearer_of, check_signature, check_token, signature

KEY, BODY = "k3y-never-shown", b'{"delivery": "2026-01-02"}'


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None),
])
def test_the_bearer_token_of_an_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_of(header) == token


def test_a_token_is_missing_or_wrong() -> None:
    check_token("right", "right")
    with pytest.raises(CredentialsMissing):
        check_token(None, "right")
    with pytest.raises(CredentialsInvalid) as wrong:
        check_token("wrong", "right")
    assert "right" not in str(wrong.value) and "wrong" not in str(wrong.value)


@pytest.mark.parametrize("prefix", ["sha256=", "SHA256=", ""])
def test_a_signature_is_the_hex_hmac_sha256_of_the_body(prefix: str) -> None:
    expected = hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    assert signature(BODY, KEY) == expected
    check_signature(BODY, prefix + expected, KEY, header="X-Signature-256")
    check_signature(BODY, prefix + expected.upper(), KEY, header="X-Signature-256")


def test_a_signature_that_is_missing_or_does_not_match() -> None:
    with pytest.raises(CredentialsMissing, match="X-Sig"):
        check_signature(BODY, "", KEY, header="X-Sig")
    with pytest.raises(CredentialsInvalid) as wrong:
        check_signature(BODY + b" ", "sha256=" + signature(BODY, KEY), KEY, header="X-Sig")
    assert KEY not in str(wrong.value)
    with pytest.raises(CredentialsInvalid):
        check_signature(BODY, "sha256=not-hex-at-all-\u00e9", KEY, header="X-Sig")
