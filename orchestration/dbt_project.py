"""The dbt project as Dagster sees it: prepared (generated and parsed) once, when the definitions load."""

from __future__ import annotations

from dagster_dbt import DbtProject

from codegen.dbt_files import DBT_PROJECT_DIR
from codegen.dbt_parse import prepare
from metadata.catalog import Catalog


def dbt_project(catalog: Catalog) -> DbtProject:
    prepare(catalog, project_dir=DBT_PROJECT_DIR)
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
