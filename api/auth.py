"""Who may call the service: a bearer token or an HMAC-SHA256 signature of the body, each compared in constant
time. No credential given is `CredentialsMissing` (401), a wrong one `CredentialsInvalid` (403); neither message
quotes what was presented or expected."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_PREFIX = "sha256="


class CredentialsMissing(Exception):
    """401: the request carries no credential of the expected kind."""


class CredentialsInvalid(Exception):
    """403: the request carries a credential, and it is not the right one."""


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_token(presented: str | None, expected: str) -> None:
    if not presented:
        raise CredentialsMissing("send the token as 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise CredentialsInvalid("the token is not valid")


def signature(body: bytes, secret: str) -> str:
    """The signature a sender computes: hex HMAC-SHA256 of the exact body bytes (`sha256=` may precede it)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, presented: str | None, secret: str, *, header: str) -> None:
    if not presented:
        raise CredentialsMissing(f"send the HMAC-SHA256 of the body, hex, in the header {header}")
    value = presented.strip()
    value = value[len(SIGNATURE_PREFIX):] if value.lower().startswith(SIGNATURE_PREFIX) else value
    if not hmac.compare_digest(value.lower().encode(), signature(body, secret).encode()):
        raise CredentialsInvalid(f"the signature in {header} does not match the body")
