"""The Dagster definitions: landing (dlt) -> quality checks -> bronze/silver/gold (dbt), with audit.

Loaded lazily: importing this module does nothing; `dagster dev -m orchestration.definitions` (the UI)
calls `defs`, and the `dataplatform` CLI, which runs the same jobs in-process, `platform_definitions()`.
Building them reads the metadata, generates the dbt files and parses the dbt project if it changed.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import dagster as dg
from dagster_dlt import DagsterDltResource

from metadata.catalog import Catalog
from metadata.source import load_platform_catalog
from observability.logs import json_logs
from orchestration.actions import actions_job, events_sensor
from orchestration.assets.landing import landing_assets, landing_op_name
from orchestration.assets.quality import quality_checks
from orchestration.assets.transform import transform_assets
from orchestration.dbt_project import dbt_project
from orchestration.executor import platform_executor
from orchestration.instance import JOB_TAG
from orchestration.log_format import json_lines_logger
from orchestration.resources import PlatformDbtResource, SecretStoreResource, WarehouseResource
from orchestration.run_failures import run_failure_sensor
from orchestration.triggers import triggers
from warehouse.connection import export_configured_warehouse
from warehouse.embedded import state_dir
from warehouse.files import secure_state_dir

RUN_ALL_JOB = "run_all"
# dbt from this interpreter's environment, whether or not that environment is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

__all__ = ["RUN_ALL_JOB", "defs", "landing_op_name", "platform_catalog", "platform_definitions", "platform_job",
           "system_job_name"]


def system_job_name(system_id: str) -> str:
    return f"run_{system_id.lower()}"


def build_definitions(catalog: Catalog) -> dg.Definitions:
    project = dbt_project(catalog)
    landing = landing_assets(catalog)
    run_all = dg.define_asset_job(RUN_ALL_JOB, selection=dg.AssetSelection.all(), tags={JOB_TAG: RUN_ALL_JOB},
                                  description="Land every system, check, and build bronze, silver and gold.")
    system_jobs = {
        system_id: dg.define_asset_job(
            system_job_name(system_id),
            selection=dg.AssetSelection.assets(system_assets).downstream(),
            tags={JOB_TAG: system_job_name(system_id)},
            description=f"Land {system_id} and build everything downstream of it.",
        )
        for system_assets, system_id in zip(landing, catalog.systems, strict=True)
    }
    schedules, sensors = triggers(catalog.systems, system_jobs)
    failures = run_failure_sensor(catalog, system_of_job={job.name: s for s, job in system_jobs.items()},
                                  system_of_step={landing_op_name(s): s for s in catalog.systems},
                                  run_all_job=RUN_ALL_JOB)
    return dg.Definitions(
        assets=[*landing, transform_assets(catalog, project)],
        asset_checks=quality_checks(catalog),
        jobs=[run_all, *system_jobs.values(), actions_job(catalog)],
        schedules=schedules,
        sensors=[*sensors, events_sensor(catalog), failures],
        # DATAPLATFORM_LOG_FORMAT=json: every job's console logger writes the platform's JSON lines.
        loggers={"console": json_lines_logger} if json_logs() else None,
        resources={
            "dlt": DagsterDltResource(),
            "dbt": PlatformDbtResource(project_dir=project, dbt_executable=DBT_EXECUTABLE),
            "warehouse": WarehouseResource(),
            "secrets": SecretStoreResource(),
        },
        executor=platform_executor(),  # DATAPLATFORM_EXECUTOR: Dagster's default, or Celery workers
    )


@functools.cache
def platform_catalog() -> Catalog:
    """The validated metadata this process's definitions are built from (files or the MongoDB registry,
    as DATAPLATFORM_METADATA_SOURCE says)."""
    return load_platform_catalog()


@functools.cache
def platform_definitions() -> dg.Definitions:
    # Dagster's own processes (`dagster dev`'s code server, run workers) load these, not the CLI: they
    # too must write state, logs and landed files owner-only.
    secure_state_dir(state_dir())
    export_configured_warehouse()  # a run in its own container or on a Celery worker: dbt needs DATAPLATFORM_PG_*
    return build_definitions(platform_catalog())


def platform_job(job_name: str) -> dg.JobDefinition:
    """A job by name: the code pointer a run on Celery workers is rebuilt from in every worker process."""
    return platform_definitions().resolve_job_def(job_name)


@dg.definitions
def defs() -> dg.Definitions:
    return platform_definitions()
