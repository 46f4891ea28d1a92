"""The Dagster instance the CLI and the UI share: DAGSTER_HOME under the platform's state folder."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from warehouse.embedded import state_dir
from warehouse.files import private_folder

# The default storage (under DAGSTER_HOME) is right. Runs launched from the UI, a schedule or a sensor go
# through the run queue: one platform run at a time, whatever its job or selection ("Materialize all" has
# no job tag, so a limit on a tag let it through). The queue counts the CLI's in-process runs too (they are
# in this instance, in progress). Behind it, every run's landing step takes the system's landing lock and
# its dbt step the transform lock (audit.locks), so even a run started around the queue never overlaps.
# Telemetry off: a home server often has no way out, and nothing should wait on it.
JOB_TAG = "dataplatform/job"
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 1
"""
# What earlier versions wrote: replaced by the current file (an operator's own file is left alone).
_EARLIER_DAGSTER_YAML = (f"""\
telemetry:
  enabled: false
run_queue:
  tag_concurrency_limits:
    - key: "{JOB_TAG}"
      limit: 1
""",)


def prepare_dagster_home() -> Path:
    """DAGSTER_HOME (default `$DATAPLATFORM_HOME/dagster`), owner-only, with the platform's dagster.yaml if it
    has none."""
    os.environ.setdefault("DAGSTER_HOME", str((state_dir() / "dagster").absolute()))
    home = private_folder(Path(os.environ["DAGSTER_HOME"]))  # event and compute logs quote the data
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in _EARLIER_DAGSTER_YAML:
        config.write_text(DAGSTER_YAML)
    return home


def dagster_instance() -> dg.DagsterInstance:
    prepare_dagster_home()
    return dg.DagsterInstance.get()
