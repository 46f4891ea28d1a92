"""The Dagster definitions load, and the asset graph reads landing -> bronze -> silver -> gold."""

from __future__ import annotations

import dagster as dg


def _key(path: str) -> dg.AssetKey:
    return dg.AssetKey(path.split("/"))


def test_asset_graph_has_every_layer_and_the_expected_edges() -> None:
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    parents = {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys)
               for k in graph.get_all_asset_keys()}
    assert parents == {
        "landing/tst01_owners": [],
        "landing/tst01_vehicles": [],
        "bronze/tst01_owner": ["landing/tst01_owners"],
        "bronze/tst01_vehicle": ["landing/tst01_vehicles"],
        "bronze/tst01_vehicle_option": ["landing/tst01_vehicles"],
        "silver/tst01_owner": ["bronze/tst01_owner"],
        "silver/tst01_vehicle": ["bronze/tst01_vehicle"],
        "silver/tst01_vehicle_option": ["bronze/tst01_vehicle_option"],
        "gold/owner_vehicles": ["silver/tst01_owner", "silver/tst01_vehicle"],
    }


def test_quality_gate_checks_are_blocking_and_on_landing() -> None:
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    checks = {(c.asset_key.to_user_string(), c.name): graph.get_check_spec(c).blocking
              for c in graph.asset_check_keys}
    assert checks[("landing/tst01_vehicles", "vehicle_quality_gate")] is True
    assert checks[("landing/tst01_vehicles", "vehicle_option_quality_gate")] is True
    assert checks[("landing/tst01_owners", "owner_quality_gate")] is True


def test_the_quality_gate_runs_before_dbt() -> None:
    """Blocking checks are what orders the gate before the dbt step (bronze reads the gate's audit rows);
    a non-blocking check would have no edge to dbt."""
    from dagster._core.execution.api import create_execution_plan

    from orchestration.definitions import defs

    plan = create_execution_plan(defs().resolve_job_def("run_tst01"))
    levels = [[step.key for step in level] for level in plan.get_steps_to_execute_by_level()]
    assert levels == [["landing_tst01"], ["quality_tst01"], ["dbt_layers"]]


def test_jobs_run_everything_or_one_system() -> None:
    from orchestration.definitions import defs

    assert {"run_all", "run_tst01"} <= {job.name for job in defs().resolve_all_job_defs()}
    selected = defs().resolve_job_def("run_tst01").asset_layer.selected_asset_keys
    assert selected == defs().resolve_job_def("run_all").asset_layer.selected_asset_keys
    assert {_key("landing/tst01_owners"), _key("silver/tst01_vehicle_option"), _key("gold/owner_vehicles")} <= selected
