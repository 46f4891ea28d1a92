"""The Dagster definitions: landing (dlt) -> quality checks -> bronze/silver/gold (dbt), with audit.

Loaded by `dagster dev -m orchestration.definitions` (the UI) and by the `dataplatform` CLI, which
runs the same jobs in-process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dlt import DagsterDltResource

from metadata.catalog import Catalog, load_catalog
from orchestration.assets.landing import landing_assets
from orchestration.assets.quality import quality_checks
from orchestration.assets.transform import transform_assets
from orchestration.dbt_project import prepare
from orchestration.runtime import JOB_TAG

RUN_ALL_JOB = "run_all"
# dbt from this interpreter's environment, whether or not that environment is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


def system_job_name(system_id: str) -> str:
    return f"run_{system_id.lower()}"


def build_definitions(catalog: Catalog) -> dg.Definitions:
    project = prepare(catalog)
    landing = landing_assets(catalog)
    jobs = [dg.define_asset_job(RUN_ALL_JOB, selection=dg.AssetSelection.all(), tags={JOB_TAG: RUN_ALL_JOB},
                                description="Land every system, check, and build bronze, silver and gold.")]
    for system_assets, system_id in zip(landing, catalog.systems):
        jobs.append(
            dg.define_asset_job(
                system_job_name(system_id),
                selection=dg.AssetSelection.assets(system_assets).downstream(),
                tags={JOB_TAG: system_job_name(system_id)},
                description=f"Land {system_id} and build everything downstream of it.",
            )
        )
    return dg.Definitions(
        assets=[*landing, transform_assets(catalog, project)],
        asset_checks=quality_checks(catalog),
        jobs=jobs,
        resources={"dlt": DagsterDltResource(), "dbt": DbtCliResource(project_dir=project, dbt_executable=DBT_EXECUTABLE)},
    )


catalog = load_catalog()
defs = build_definitions(catalog)
