"""The benchmark harness still works: a tiny size end to end, every stage with a positive figure.

Timings are never asserted (DESIGN.md): this only proves `make bench` would produce its table. The
harness runs as a subprocess with its own state folder, so it starts its own embedded PostgreSQL
and never touches the session's warehouse, which the end-to-end tests share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIZE = 200


@pytest.mark.e2e
def test_harness_reports_every_stage_of_a_tiny_size(tmp_path: Path) -> None:
    from bench.report import MEMORY_KEYS, STAGE_KEYS

    env = {k: v for k, v in os.environ.items()
           if k not in ("DATAPLATFORM_HOME", "DAGSTER_HOME", "DATAPLATFORM_DATABASE_URL", "DATAPLATFORM_BENCH_HOME")}
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--sizes", str(SIZE), "--home", str(tmp_path / "home"), "--out", str(out),
         "--history-days", "3"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "landing / raw COPY" in proc.stdout  # the targets table is printed

    [result_file] = out.glob("*.json")
    results = json.loads(result_file.read_text())
    assert list(results["sizes"]) == [str(SIZE)]
    size = results["sizes"][str(SIZE)]
    assert set(size["stages"]) == set(STAGE_KEYS)
    for key, figure in size["stages"].items():
        if figure["seconds"] is None:  # a re-run with nothing to build does not start dbt; the delta system has no gold
            assert key in {f"rerun.{k}" for k in ("bronze", "silver", "gold", "dbt_tests")} | {
                "delta1.gold", "delta2.gold"}, key
            continue
        assert figure["seconds"] > 0, key
        assert figure["x_copy"] > 0 and figure["x_peer"] > 0, key
        if figure["records"]:
            assert figure["records_per_s"] > 0, key
    for key in MEMORY_KEYS:
        assert size["stages"][key]["peak_mib"] > 0, key
    assert size["peak_mib"] > 0
    # Where the memory went: the tree's peak while each step of day 1 ran (each lasts seconds: sampled every 0.2 s).
    day1_steps = size["runs"]["day1"]["memory"]["step_peak_mib"]
    assert {step.split("_")[0] for step in day1_steps} == {"landing", "quality", "dbt"}, day1_steps
    assert all(0 < mib <= size["runs"]["day1"]["peak_mib"] for mib in day1_steps.values()), day1_steps
    assert size["records"]["day1"] == SIZE + SIZE // 5
    assert {t["figure"] for t in results["targets"]} >= {"landing / raw COPY", "re-run, no new data: whole run"}
