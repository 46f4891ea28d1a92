"""What every step needs at run time: the warehouse URL, dbt's connection variables, run tags."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from orchestration.warehouse import DATABASE_URL_ENV, connection_params, state_dir

FORCE_TAG = "dataplatform/force"
REPLAY_TAG = "dataplatform/replay"  # "<system>.<entity>:<batch id>[,...]"


# The default storage (under DAGSTER_HOME) is right. Runs launched from the UI go through the run queue:
# one platform run at a time, so two runs never work on the same batch (CLI runs take run locks instead).
# Telemetry off: a home server often has no way out, and nothing should wait on it.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_queue:
  tag_concurrency_limits:
    - key: "dataplatform/job"
      limit: 1
"""
JOB_TAG = "dataplatform/job"


class NoWarehouseError(RuntimeError):
    pass


def warehouse_url() -> str:
    """The URL the `dataplatform` command exported (or the operator set) for this process."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise NoWarehouseError(
            f"{DATABASE_URL_ENV} is not set: start Dagster through `dataplatform dev` (which starts the embedded "
            "PostgreSQL and sets it), or set it to your PostgreSQL URL"
        )
    return url


def export_warehouse_env(url: str) -> None:
    """Make the warehouse reachable by everything this process starts: dlt, dbt (profiles.yml) and Dagster."""
    params = connection_params(url)
    os.environ[DATABASE_URL_ENV] = url
    os.environ["DATAPLATFORM_PG_HOST"] = str(params["host"])
    os.environ["DATAPLATFORM_PG_PORT"] = str(params["port"])
    os.environ["DATAPLATFORM_PG_USER"] = str(params["user"])
    os.environ["DATAPLATFORM_PG_PASSWORD"] = str(params["password"])
    os.environ["DATAPLATFORM_PG_DBNAME"] = str(params["dbname"])
    os.environ.setdefault("DAGSTER_HOME", str((state_dir() / "dagster").absolute()))
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)


def advisory_key(name: str) -> int:
    """A stable advisory-lock key for a name (a system id)."""
    return zlib.crc32(name.encode())
