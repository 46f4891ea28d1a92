"""Secrets never leak and state files are the owner's only (issue 14, items 2 and 4).

The TST01 source folder is declared as a secret reference with a distinctive value, and the warehouse
has its own generated password. The `dataplatform` command runs, with the usual umask 0o022, a source
folder that does not exist, a good delivery, a malformed one, `status`, and warehouses it cannot reach
or log in to. Then neither value may appear anywhere: the CLI's output, Dagster's storage (sqlite
files, compute logs), dlt's folder, dbt's target and logs, every audit table. Every file and folder
under the state folder is owner-only, and no landed record is left on disk by dlt.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import DEFAULT_FOLDER
from warehouse.embedded import SERVER_OS_USER, EmbeddedPostgres

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "tst01/source_path"
SECRET_VARIABLE = "DATAPLATFORM_SECRET_TST01_SOURCE_PATH"
SECRET_FOLDER_NAME = "deliveries-Zq81xK7vTopSecret"  # the distinctive part of the secret path
UNREACHABLE_PASSWORD = "Unreachable-pw-93kd7Qx"
WRONG_PASSWORD = "Wrong-pw-k29DmX4e"
_INHERITED = ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER",
              "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME", "DATAPLATFORM_FAULT_PAUSE")
AUDIT_TABLES = ("system_run", "system_layer_run", "entity_layer_run", "cursor")


def _declarations(tmp_path: Path) -> Path:
    """The bundled declarations, with TST01's source folder as a secret reference."""
    folder = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, folder)
    systems = json.loads((folder / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": SECRET_KEY}
    (folder / "systems.json").write_text(json.dumps(systems, indent=2))
    return folder


def _cli(home: Path, metadata: Path, source: Path, *args: str, url: str | None = None) -> tuple[int, str]:
    """`dataplatform ...` with the usual umask 0o022 (the platform must not depend on a stricter one)."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"), DATAPLATFORM_METADATA_DIR=str(metadata),
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]), **{SECRET_VARIABLE: str(source)})
    if url:
        env["DATAPLATFORM_DATABASE_URL"] = url
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO, text=True, umask=0o022,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    return done.returncode, done.stdout


def _files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _holders(needles: list[str], roots: list[Path]) -> dict[str, list[str]]:
    """Which files hold which value (bytes compared: sqlite files and pickles included)."""
    found: dict[str, list[str]] = {}
    for path in _files(*roots):
        try:
            data = path.read_bytes()
        except OSError:
            continue  # a socket or a file removed meanwhile
        for needle in needles:
            if needle.encode() in data:
                found.setdefault(needle, []).append(str(path))
    return found


@pytest.fixture
def outside_pytest_tmp() -> Iterator[Path]:
    """A folder outside pytest's temporary root: as root, the embedded server's account must pass through
    every parent of the state folder, and a concurrent pytest session resets `pytest-of-<user>` to 0700."""
    folder = Path(tempfile.mkdtemp(prefix="dataplatform-secrets-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_secret_values_appear_nowhere_and_state_is_owner_only(tmp_path: Path, outside_pytest_tmp: Path) -> None:
    home, metadata = outside_pytest_tmp / "home", _declarations(tmp_path)
    source = tmp_path / SECRET_FOLDER_NAME  # the secret's value; outside the state folder, as a real source is
    outputs: list[str] = []

    def cli(*args: str, url: str | None = None) -> tuple[int, str]:
        code, output = _cli(home, metadata, source, *args, url=url)
        outputs.append(output)
        return code, output

    # The source folder does not exist yet: the run fails, and says so without quoting the path.
    code, output = cli("run")
    assert code == 1, output
    assert "source folder *** does not exist" in output

    days = list(simulate(days=2, seed=21))
    write_day(days[0], source)
    code, output = cli("run")
    assert code == 0, output

    folder = write_day(days[1], source)
    (folder / "vehicles.json").write_text('[{"vehicle_id": "V1",, }]')
    code, output = cli("run")
    assert code == 1, output
    assert "***/2026-01-02/vehicles.json: not valid JSON at line 1, column 22" in output

    code, output = cli("status")
    assert code == 0, output

    server = EmbeddedPostgres(home / "postgres")
    password = server.password_file.read_text().strip()
    port = int(server.port_file.read_text())
    code, output = cli("status", url=f"postgresql://postgres:{UNREACHABLE_PASSWORD}@127.0.0.1:1/warehouse")
    assert code == 3, output  # nothing listens on port 1
    server.start()
    try:
        code, output = cli("status", url=f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:{port}/warehouse")
        assert code == 3, output
        assert "password authentication failed" in output
        with psycopg.connect(server.url()) as conn:
            audit = "\n".join(str(row) for table in AUDIT_TABLES
                              for row in conn.execute(f"select t::text from audit.{table} t").fetchall())
            messages = conn.execute("select message from audit.system_run order by system_run_id").fetchall()
    finally:
        server.stop()
    # The missing folder stops the run before a batch opens; the malformed delivery's batch failed, masked.
    assert [m[0] is not None and "***/2026-01-02/vehicles.json" in m[0] for m in messages] == [False, True]

    secrets = [str(source), SECRET_FOLDER_NAME, password, UNREACHABLE_PASSWORD, WRONG_PASSWORD]
    cli_output, dbt_folders = "\n".join(outputs), [REPO / "dbt_project" / "target", REPO / "dbt_project" / "logs"]
    assert [s for s in secrets if s in cli_output] == []
    assert [s for s in secrets if s in audit] == []
    # The password file holds the password by design; nothing else under the state folder may.
    stored = _holders(secrets, [home / "dagster", home / "dlt", *dbt_folders])
    stored |= _holders(secrets, [p for p in (home / "postgres").iterdir() if p.name not in ("password", "data")])
    assert stored == {}

    _assert_owner_only(home)
    people = [o["email"] for o in days[0].owners.values()] + [o["name"] for o in days[0].owners.values()]
    assert _holders(people, [home / "dlt"]) == {}  # dlt's load packages do not keep the landed records


def _assert_owner_only(home: Path) -> None:
    """0700 folders and 0600 files everywhere under the state folder; as root, the folders on the
    embedded server's path are 0710 with its account's group (it must pass; nobody may list them)."""
    passage = {home, home / "postgres"} if os.geteuid() == 0 else set()
    server_group = pwd.getpwnam(SERVER_OS_USER).pw_gid if passage else None
    wrong = []
    for path in [home, *home.rglob("*")]:
        if path.is_symlink() or path.is_socket():
            continue
        mode = path.stat().st_mode & 0o777
        expected = (0o710 if path in passage else 0o700) if path.is_dir() else 0o600
        if mode != expected:
            wrong.append(f"{oct(mode)} {path}")
        if path in passage and path.stat().st_gid != server_group:
            wrong.append(f"group {path.stat().st_gid} {path}")
    assert wrong == []
