"""Importing the definitions module has no side effects: metadata is read, dbt files are generated and
dbt parses only when Dagster (or the CLI) asks for the definitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_definitions_reads_no_metadata_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "DATAPLATFORM_METADATA_DIR": str(tmp_path / "no-such-folder"),
           "DATAPLATFORM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    code = ("import orchestration.definitions as d, orchestration.execute, cli.main; "
            "print(type(d.defs).__name__)")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "LazyDefinitions"
    assert not (tmp_path / "home").exists()
    assert list(tmp_path.iterdir()) == []


def test_loading_them_with_bad_metadata_names_the_problem(tmp_path: Path) -> None:
    env = {**os.environ, "DATAPLATFORM_METADATA_DIR": str(tmp_path / "no-such-folder"), "PYTHONPATH": str(REPO)}
    code = "import orchestration.definitions as d; d.defs()"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert "systems.json: (file): field '-': file not found at" in result.stderr
