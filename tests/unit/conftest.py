"""Fixtures the metadata tests share: a private copy of the bundled declarations, a secret store that reads
the environment only, a folder for entity-model modules, and no secret set unless a test sets it."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from metadata.catalog import DEFAULT_FOLDER
from secret_store.env import ENV_PREFIX, EnvSecretStore


@pytest.fixture(autouse=True)
def no_secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, no secret is set unless a test sets it."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DATAPLATFORM_ENV_FILE", raising=False)


@pytest.fixture
def store(tmp_path: Path) -> EnvSecretStore:
    """The environment only: its `.env` file does not exist."""
    return EnvSecretStore(env_file=tmp_path / "absent.env")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the bundled declarations, free to mutate."""
    target = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, target)
    return target


@pytest.fixture
def model_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write a module of entity models into tmp_path (on sys.path); returns its name."""
    target = tmp_path / "models"
    target.mkdir()
    monkeypatch.syspath_prepend(str(target))
    names: list[str] = []

    def write(name: str, source: str) -> str:
        (target / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)
