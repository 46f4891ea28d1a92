"""The one redaction rule: every secret value this process resolved is masked in every message it writes.

Secret values enter a process in these ways only: `resolve_secrets` (a system's connection), the
warehouse URL (the embedded server's generated password, or the one in DATAPLATFORM_DATABASE_URL), the
Vault store's credentials (token, AppRole secret id, the token a login returns) and the MongoDB
registry's URL. All are recorded here, and every writer of messages (audit rows, Dagster log lines and failures, CLI
output, the quality gate's verdicts) passes its text through `redact`. A value is masked in each form
a message may carry it: as is, percent-encoded (URLs), and escaped as JSON and Python quote it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
# The warehouse connection as this process knows it (read at every call: tests and commands switch warehouses).
_URL_ENV, _PASSWORD_ENV = "DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_PASSWORD"

_values: set[str] = set()
_lock = threading.Lock()


def remember_secret(value: object) -> None:
    """Record a resolved secret value (every string inside it) so that `redact` masks it from now on."""
    if isinstance(value, dict):
        for item in value.values():
            remember_secret(item)
    elif isinstance(value, list | tuple):
        for item in value:
            remember_secret(item)
    elif isinstance(value, str) and value.strip():
        with _lock:
            _values.add(value)


def _warehouse_passwords() -> Iterator[str]:
    yield os.environ.get(_PASSWORD_ENV, "")
    url = os.environ.get(_URL_ENV, "")
    if url:
        try:
            yield unquote(urlsplit(url).password or "")
        except ValueError:  # an unparseable URL is masked whole
            yield url


def _forms(value: str) -> set[str]:
    """How a message may quote `value`: as is, percent-encoded, JSON- and repr-escaped."""
    return {value, quote(value, safe=""), json.dumps(value)[1:-1], repr(value)[1:-1]}


def secret_values() -> list[str]:
    """Every value to mask, longest first (so a secret containing another is masked whole)."""
    with _lock:
        values = set(_values)
    values |= {p for p in _warehouse_passwords() if p.strip()}
    return sorted({form for value in values for form in _forms(value) if form.strip()}, key=len, reverse=True)


def redact(text: object) -> str:
    """`text` (any object, as str()) with every known secret value replaced by `***`."""
    result = str(text)
    for value in secret_values():
        if value in result:
            result = result.replace(value, MASK)
    return result


def redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)
