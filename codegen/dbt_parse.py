"""The dbt project made ready to run: generated from metadata and parsed once, at start-up.

`prepare()` regenerates the metadata-driven files and runs `dbt parse` only when something under the
project changed since the last parse (a content hash is kept next to the manifest), so start-up
stays quick when nothing changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from codegen.dbt_files import DBT_PROJECT_DIR, generate
from metadata.catalog import Catalog

_HASH_FILE = "dataplatform_parse.sha256"


def _project_hash(project_dir: Path) -> str:
    digest = hashlib.sha256()
    files = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files += sorted(p for p in (project_dir / folder).rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(project_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def parsed_project_hash(project_dir: Path = DBT_PROJECT_DIR) -> str | None:
    """The hash of the project as last parsed (written by `prepare`): what the manifest was built from."""
    marker = project_dir / "target" / _HASH_FILE
    return marker.read_text() if marker.exists() else None


def parse(project_dir: Path = DBT_PROJECT_DIR) -> None:
    """Run `dbt parse` in-process (no database needed) and fail with dbt's own message."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        ["parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir), "--quiet"]
    )
    if not result.success:
        raise RuntimeError(f"dbt parse failed in {project_dir}: {result.exception or 'see the dbt log above'}")


def prepare(catalog: Catalog, *, project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Generate, parse if anything changed, and return the path of dbt's manifest."""
    generate(catalog, project_dir=project_dir)
    manifest = project_dir / "target" / "manifest.json"
    current = _project_hash(project_dir)
    marker = project_dir / "target" / _HASH_FILE
    if not manifest.exists() or not marker.exists() or marker.read_text() != current:
        parse(project_dir)
        marker.write_text(current)
    return manifest
