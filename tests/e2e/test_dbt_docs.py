"""`dataplatform dbt docs generate` documents what is really in the database: after one run of the test
system, every column of every landing, bronze, silver and gold table (as dbt's catalog reads it from
PostgreSQL) has a description and a data_type in the manifest, and that type is the column's real type.

Runs in a warehouse of its own (`fresh_warehouse`), so its batch does not change the row counts the
other end-to-end tests assert on the session warehouse.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingestion.test_system.generator import simulate, write_day

pytestmark = pytest.mark.e2e

# PostgreSQL's short names (as the generated YAML writes them) -> the names its catalog reports.
_TYPE_ALIASES = {
    "timestamptz": "timestamp with time zone",
    "varchar": "character varying",
    "int8": "bigint",
    "int4": "integer",
    "int": "integer",
    "float8": "double precision",
    "bool": "boolean",
    "decimal": "numeric",
}


def _normalised(pg_type: str) -> str:
    name = " ".join(pg_type.lower().split())
    return _TYPE_ALIASES.get(name, name)


def _problems(documented: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """What is wrong with one table's documentation: a real column without a description or a type, a
    type that is not the real one, or a documented column the table does not have."""
    problems = []
    for name, column in actual.items():
        doc = documented.get(name, {})
        if not doc.get("description"):
            problems.append(f"{name}: no description")
        if not doc.get("data_type"):
            problems.append(f"{name}: no data_type")
        elif _normalised(doc["data_type"]) != _normalised(column["type"]):
            problems.append(f"{name}: data_type {doc['data_type']!r}, but the table has {column['type']!r}")
    problems += [f"{name}: documented, but not in the table" for name in documented.keys() - actual.keys()]
    return problems


def test_every_column_in_the_database_is_documented_with_its_real_type(fresh_warehouse: str) -> None:
    from cli.main import main
    from codegen.dbt_files import DBT_PROJECT_DIR
    from orchestration.execute import run_job
    from warehouse.embedded import state_dir

    write_day(next(simulate(days=1, seed=11)), state_dir() / "sources" / "TST01")
    outcome = run_job(system_id="TST01", echo=lambda _: None)
    assert outcome.success, outcome.failed_steps

    assert main(["dbt", "docs", "generate"]) == 0
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    catalog = json.loads((DBT_PROJECT_DIR / "target" / "catalog.json").read_text())

    documented = {**manifest["nodes"], **manifest["sources"]}
    tables = {**catalog["nodes"], **catalog["sources"]}  # what the database holds, by dbt unique id
    assert {"landing", "bronze", "silver", "gold"} <= {table["metadata"]["schema"] for table in tables.values()}
    problems = {
        f"{table['metadata']['schema']}.{table['metadata']['name']}": _problems(documented[unique_id]["columns"],
                                                                              table["columns"])
        for unique_id, table in tables.items()
    }
    assert {table: found for table, found in problems.items() if found} == {}
