"""`dataplatform validate` and `run` on valid and invalid metadata, in-process, without a database.

Invalid metadata must stop a command with exit code 2 and a message naming the file, the object and
the field of every problem, before anything is written: no embedded PostgreSQL is started and the
platform's state folder stays empty.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.main import EXIT_INVALID, EXIT_OK, main
from metadata.catalog import DEFAULT_FOLDER
from secret_store.env import ENV_PREFIX
from warehouse.embedded import DATABASE_URL_ENV

SECRET_VALUE = "s3cr3t-Value-4711"
TOKEN_REF = {"type": "secret", "key": "tst01/token"}


@dataclass(frozen=True)
class Env:
    metadata: Path  # DATAPLATFORM_METADATA_DIR: a private copy of the declarations
    home: Path  # DATAPLATFORM_HOME: must stay empty when metadata is invalid
    cwd: Path  # the working directory: nothing may be written there either

    def edit(self, file: str, mutate: Callable[[Any], None]) -> None:
        path = self.metadata / file
        data = json.loads(path.read_text())
        mutate(data)
        path.write_text(json.dumps(data, indent=2))

    def written(self) -> list[str]:
        return sorted(str(p.relative_to(self.home.parent)) for root in (self.home, self.cwd) for p in root.rglob("*"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    e = Env(metadata=tmp_path / "metadata", home=tmp_path / "home", cwd=tmp_path / "cwd")
    shutil.copytree(DEFAULT_FOLDER, e.metadata)
    e.home.mkdir()
    e.cwd.mkdir()
    monkeypatch.chdir(e.cwd)
    monkeypatch.setenv("DATAPLATFORM_METADATA_DIR", str(e.metadata))
    monkeypatch.setenv("DATAPLATFORM_HOME", str(e.home))
    monkeypatch.setenv("DATAPLATFORM_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return e


def entity(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in data["entities"] if e["name"] == name)


def break_consistency(env: Env) -> list[str]:
    """Two problems found after parsing; returns the lines stderr must contain."""
    env.edit("entities.json", lambda d: entity(d, "owner").update(landing_entity="drivers"))
    env.edit("actions.json", lambda d: d["actions"][0].update(after_systems=["TST01", "XYZ99"]))
    return [
        "error: invalid metadata (2 problem(s)):",
        "  - entities.json: entity owner: field 'landing_entity': 'drivers' is not an endpoint of TST01 "
        "(has: owners, vehicles)",
        "  - actions.json: action refresh_gold: field 'after_systems': unknown system 'XYZ99'",
    ]


def break_parsing(env: Env) -> list[str]:
    """Two files that do not parse; returns the lines stderr must contain."""
    (env.metadata / "systems.json").write_text('{\n  "systems": [\n    {"id": "TST01",\n')
    env.edit("entities.json", lambda d: entity(d, "vehicle").update(load_typ="full"))
    return [
        "error: invalid metadata (2 problem(s)):",
        "  - systems.json: (file): field '-': not valid JSON at line 4, column 1: "
        "Expecting property name enclosed in double quotes",
        "  - entities.json: entities[1] (vehicle): field 'load_typ': Extra inputs are not permitted (got 'full')",
    ]


def break_secret(env: Env) -> list[str]:
    """A secret the environment does not hold; returns the lines stderr must contain."""
    env.edit("systems.json", lambda d: d["systems"][0]["connection"].update(path=TOKEN_REF))
    return [
        "error: invalid metadata (1 problem(s)):",
        "  - systems.json: system TST01: field 'connection': secret 'tst01/token' is missing: "
        "set the environment variable DATAPLATFORM_SECRET_TST01_TOKEN (or put it in .env)",
    ]


def test_validate_bundled_metadata(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == f"metadata in {env.metadata} is valid: 1 system(s), 3 entity(ies), 2 action(s)\n"
    assert err == ""
    assert env.written() == []


@pytest.mark.parametrize("breakage", [break_consistency, break_parsing, break_secret])
@pytest.mark.parametrize("argv", [["validate"], ["run"], ["run", "--system", "TST01"], ["demo", "--days", "1"]])
def test_invalid_metadata_exits_2_and_writes_nothing(
    env: Env,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    breakage: Callable[[Env], list[str]],
) -> None:
    expected = breakage(env)
    before = {p.name: p.read_bytes() for p in env.metadata.iterdir()}

    with pytest.raises(SystemExit) as excinfo:
        main(argv)

    assert excinfo.value.code == EXIT_INVALID
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == expected
    assert env.written() == []  # no embedded PostgreSQL, no Dagster home, no generated deliveries
    assert DATABASE_URL_ENV not in os.environ  # the warehouse was never opened and exported
    assert {p.name: p.read_bytes() for p in env.metadata.iterdir()} == before


def test_secret_value_is_not_printed(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAPLATFORM_SECRET_TST01_TOKEN", SECRET_VALUE)

    def break_connection(d: dict[str, Any]) -> None:
        connection = d["systems"][0]["connection"]
        connection["path"] = TOKEN_REF
        connection["token"] = TOKEN_REF

    env.edit("systems.json", break_connection)
    with pytest.raises(SystemExit) as excinfo:
        main(["validate"])
    assert excinfo.value.code == EXIT_INVALID
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "error: invalid metadata (1 problem(s)):",
        "  - systems.json: system TST01: field 'connection.token': Extra inputs are not permitted",
    ]
    assert SECRET_VALUE not in out + err
    assert env.written() == []


def test_validate_passes_once_the_secret_is_set(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env.edit("systems.json", lambda d: d["systems"][0]["connection"].update(path=TOKEN_REF))
    monkeypatch.setenv("DATAPLATFORM_SECRET_TST01_TOKEN", SECRET_VALUE)
    assert main(["validate"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "is valid: 1 system(s), 3 entity(ies), 2 action(s)" in out
    assert SECRET_VALUE not in out + err


def test_run_unknown_system_returns_2_before_the_warehouse(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--system", "XYZ99"]) == EXIT_INVALID
    out, err = capsys.readouterr()
    assert err == "error: unknown system 'XYZ99'; declared: TST01\n"
    assert env.written() == []
    assert DATABASE_URL_ENV not in os.environ


def test_metadata_folder_that_does_not_exist(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = env.metadata.parent / "nowhere"
    monkeypatch.setenv("DATAPLATFORM_METADATA_DIR", str(missing))
    with pytest.raises(SystemExit) as excinfo:
        main(["validate"])
    assert excinfo.value.code == EXIT_INVALID
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: invalid metadata (3 problem(s)):",
        *(f"  - {f}: (file): field '-': file not found at {missing / f}; create it"
          for f in ("systems.json", "entities.json", "actions.json")),
    ]
    assert env.written() == []
