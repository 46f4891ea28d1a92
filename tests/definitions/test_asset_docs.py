"""Every asset in the Dagster UI says what it is and shows its columns with their types: landing assets
from the translator, dbt assets from the generated YAML (through dbt's manifest)."""

from __future__ import annotations

import dagster as dg

from ingestion.landing import SYSTEM_COLUMNS

COLUMN_SCHEMA = "dagster/column_schema"


def _specs() -> dict[str, dg.AssetSpec]:
    from orchestration.definitions import defs

    graph = defs().resolve_asset_graph()
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}


def _columns(spec: dg.AssetSpec) -> list[dg.TableColumn]:
    schema = spec.metadata[COLUMN_SCHEMA]
    assert isinstance(schema, dg.TableSchema), schema
    return list(schema.columns)


def test_landing_assets_say_what_they_hold_and_show_the_landing_columns() -> None:
    specs = _specs()
    for key, endpoint in (("landing/tst01_owners", "owners"), ("landing/tst01_vehicles", "vehicles")):
        assert "TST01" in (specs[key].description or "") and f"`{endpoint}`" in (specs[key].description or "")
        columns = _columns(specs[key])
        assert [c.name for c in columns] == list(SYSTEM_COLUMNS)
        assert {c.name: c.type for c in columns}["payload"] == "jsonb"
        assert all(c.type and c.description for c in columns), columns


def test_every_dbt_asset_is_described_and_has_typed_described_columns() -> None:
    dbt_specs = {key: spec for key, spec in _specs().items() if not key.startswith("landing/")}
    assert {"bronze/tst01_vehicle", "silver/tst01_vehicle_option", "gold/owner_vehicles"} <= set(dbt_specs)
    for key, spec in dbt_specs.items():
        assert spec.description, key
        untyped = [c.name for c in _columns(spec) if c.type in ("", "?") or not c.description]
        assert untyped == [], f"{key}: columns without a type or description: {untyped}"


def test_silver_shows_the_entity_columns_then_the_version_columns() -> None:
    columns = {c.name: c.type for c in _columns(_specs()["silver/tst01_vehicle"])}
    assert list(columns)[:2] == ["vehicle_id", "vin"]
    assert (columns["owner_since"], columns["valid_from"], columns["_closed_by_batch_id"]) == (
        "date", "timestamptz", "bigint")
