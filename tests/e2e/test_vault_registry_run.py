"""The home-server configuration end to end: metadata deployed to the MongoDB registry, the source's
connection path a secret in Vault, and `dataplatform run` landing a delivery through the real pipeline.

The Vault is the KV v2 stand-in this test starts on loopback (a real one when VAULT_ADDR + VAULT_TOKEN are
set); the registry is NX-27017, a MongoDB wire-protocol server started on loopback (a real MongoDB when
DATAPLATFORM_TEST_MONGODB_URL is set). The CLI runs as a separate process, as an operator runs it, with
DATAPLATFORM_SECRET_STORE=vault and, for the run, DATAPLATFORM_METADATA_SOURCE=mongodb and a declarations
folder that does not exist. Then the rows of landing and silver are asserted by value, and the secret value
(the source folder's path) may appear nowhere: CLI output, Dagster's storage, dlt's folder, dbt's target and
logs, the audit tables, the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pymongo
import pytest
from mongo_wire_server import fresh_database, mongodb_server
from vault_kv_standin import vault_under_test

from ingestion.test_system.generator import simulate, write_day
from metadata.catalog import DEFAULT_FOLDER
from warehouse.embedded import EmbeddedPostgres

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SECRET_KEY = "tst01/source_path"
SECRET_FOLDER_NAME = "deliveries-Vault-Kq71zP"  # the distinctive part of the secret's value
AUDIT_TABLES = ("system_run", "system_layer_run", "entity_layer_run", "cursor")
_INHERITED = ("DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_PG_HOST", "DATAPLATFORM_PG_PORT", "DATAPLATFORM_PG_USER",
              "DATAPLATFORM_PG_PASSWORD", "DATAPLATFORM_PG_DBNAME", "DATAPLATFORM_FAULT_PAUSE",
              "DATAPLATFORM_METADATA_SOURCE", "DATAPLATFORM_SECRET_STORE")


@pytest.fixture
def outside_pytest_tmp() -> Iterator[Path]:
    """The state folder outside pytest's temporary root (the embedded server's account must pass through
    every parent; see test_secrets_and_files.py)."""
    folder = Path(tempfile.mkdtemp(prefix="dataplatform-vault-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _holders(needles: list[str], roots: list[Path]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file() and not p.is_symlink()) if root.is_dir() else ():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for needle in needles:
                if needle.encode() in data:
                    found.setdefault(needle, []).append(str(path))
    return found


def test_a_run_reads_its_metadata_from_mongodb_and_its_secret_from_vault(
        tmp_path: Path, outside_pytest_tmp: Path) -> None:
    home, source = outside_pytest_tmp / "home", tmp_path / SECRET_FOLDER_NAME
    declarations = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, declarations)
    systems = json.loads((declarations / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": SECRET_KEY}
    (declarations / "systems.json").write_text(json.dumps(systems, indent=2))
    day = next(iter(simulate(days=1, seed=5)))
    write_day(day, source)
    outputs: list[str] = []

    with vault_under_test() as vault, mongodb_server(tmp_path / "mongodb") as server, \
            fresh_database(server) as mongodb_url:
        vault.write(SECRET_KEY, {"value": str(source)})
        base = {k: v for k, v in os.environ.items() if k not in _INHERITED}
        base.update(vault.env(), DATAPLATFORM_HOME=str(home), DAGSTER_HOME=str(home / "dagster"),
                    DATAPLATFORM_MONGODB_URL=mongodb_url, DATAPLATFORM_ENV_FILE=str(tmp_path / "absent.env"),
                    PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))

        def cli(*args: str, **env: str) -> tuple[int, str]:
            done = subprocess.run([sys.executable, "-m", "cli.main", *args], env={**base, **env}, cwd=REPO,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
            outputs.append(done.stdout)
            return done.returncode, done.stdout

        code, output = cli("deploy-metadata", DATAPLATFORM_METADATA_DIR=str(declarations))
        assert code == 0, output
        assert "as version 1: 1 system(s), 3 entity(ies), 2 action(s)" in output
        # The run reads the registry: the declarations folder it would otherwise read does not exist.
        code, output = cli("run", DATAPLATFORM_METADATA_SOURCE="mongodb",
                           DATAPLATFORM_METADATA_DIR=str(tmp_path / "no-such-folder"))
        assert code == 0, output
        with pymongo.MongoClient(mongodb_url, serverSelectionTimeoutMS=5000) as client:
            registry = json.dumps([doc for name in client.get_default_database().list_collection_names()
                                   for doc in client.get_default_database()[name].find({}, {"_id": 0})],
                                  default=str)
        if vault.standin is not None:
            # Once by each store: the deploy's validation; the run's validation, the definitions' catalog and
            # the run's secret-store resource (steps share it: the run itself reads the value once).
            assert vault.standin.reads_of(vault.mount, f"{vault.prefix}/{SECRET_KEY}") == 4

    server_pg = EmbeddedPostgres(home / "postgres")
    server_pg.start()
    try:
        with psycopg.connect(server_pg.url()) as conn:
            landed = conn.execute("select payload from landing.tst01_owners order by (payload->>'owner_id')::int")
            landed_owners = [row[0] for row in landed.fetchall()]
            silver = conn.execute("select owner_id, name, email from silver.tst01_owner where valid_to is null "
                                  "order by owner_id").fetchall()
            statuses = conn.execute("select system_id, status from audit.system_run").fetchall()
            audit = "\n".join(str(row) for table in AUDIT_TABLES
                              for row in conn.execute(f"select t::text from audit.{table} t").fetchall())
    finally:
        server_pg.stop()

    assert landed_owners == [day.owners[k] for k in sorted(day.owners)]
    assert silver == [(o["owner_id"], o["name"], o["email"]) for _, o in sorted(day.owners.items())]
    assert statuses == [("TST01", "succeeded")]
    secrets = [str(source), SECRET_FOLDER_NAME]
    assert [s for s in secrets if s in "\n".join(outputs)] == []
    assert [s for s in secrets if s in audit] == []
    assert [s for s in secrets if s in registry] == []
    dbt_folders = [REPO / "dbt_project" / "target", REPO / "dbt_project" / "logs"]
    assert _holders(secrets, [home / "dagster", home / "dlt", *dbt_folders]) == {}
