"""The one redaction rule (secret_store.redact): what it masks, in which forms, and where values come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quality.report import error_verdict
from secret_store.base import resolve_secrets
from secret_store.env import EnvSecretStore
from secret_store.redact import MASK, redact, remember_secret


def test_resolved_secret_values_are_masked_in_every_form(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    value = "/srv/src/Tst \"01\"/Geheim-u7Qz"
    monkeypatch.setenv("DATAPLATFORM_SECRET_TST01_PATH", value)
    store = EnvSecretStore(env_file=tmp_path / "absent.env")
    assert redact(f"folder {value} is missing") == f"folder {value} is missing"  # not resolved yet: not known
    resolve_secrets({"path": {"type": "secret", "key": "tst01/path"}}, store)
    assert redact(f"folder {value}/2026-01-01 is missing") == f"folder {MASK}/2026-01-01 is missing"
    assert value not in redact(json.dumps({"path": value}))  # JSON-escaped quotes
    assert value not in redact(repr(value)) and "Geheim-u7Qz" not in redact(repr(value))


def test_the_warehouse_password_is_masked_from_the_environment_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_DATABASE_URL", "postgresql://app:p%40ss-Xw93k@db:5432/warehouse")
    text = "could not connect as app with p@ss-Xw93k (postgresql://app:p%40ss-Xw93k@db:5432/warehouse)"
    assert redact(text) == f"could not connect as app with {MASK} (postgresql://app:{MASK}@db:5432/warehouse)"


def test_a_secret_containing_another_is_masked_whole() -> None:
    remember_secret("Tok-3k9")
    remember_secret("Tok-3k9-extended-L0ng")
    assert redact("token Tok-3k9-extended-L0ng, short Tok-3k9") == f"token {MASK}, short {MASK}"


def test_the_quality_gate_error_verdict_masks_through_the_same_rule() -> None:
    from metadata.catalog import load_catalog

    remember_secret("Gx-pw-55aQ")
    entity = next(iter(load_catalog().entities.values()))
    verdict = error_verdict(entity, 7, RuntimeError("connection to postgresql://u:Gx-pw-55aQ@h/db failed"))
    assert verdict.message is not None and "Gx-pw-55aQ" not in verdict.message and MASK in verdict.message
