"""Asset keys: `[layer, table]` everywhere, so dbt's landing sources are the very assets dlt lands
and lineage reads landing -> bronze -> silver -> gold in the Dagster UI.

dbt assets get their descriptions and typed column schemas from the generated YAML (through dbt's
manifest); landing assets get theirs here, since dlt knows neither."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from ingestion.landing import LANDING_SCHEMA, SYSTEM_COLUMNS
from metadata.columns import LANDING_COLUMNS


def landing_column_schema() -> dg.TableSchema:
    """The columns of every landing table (dlt's hints say which exist, metadata types and describes them)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                LANDING_COLUMNS[name].pg_type,
                description=LANDING_COLUMNS[name].description,
                constraints=dg.TableColumnConstraints(nullable=hints["nullable"]),
            )
            for name, hints in SYSTEM_COLUMNS.items()
        ]
    )


class LandingTranslator(DagsterDltTranslator):
    """dlt resources are named by their landing table: `<system id>_<endpoint>`, in a dlt source named by the
    system id (ingestion.landing), which is where the description takes the system and endpoint from."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        spec = super().get_asset_spec(data)
        system = data.resource.source_name
        endpoint = data.resource.name.removeprefix(f"{system}_")
        description = (
            f"What system {system.upper()}'s endpoint `{endpoint}` returned, as-is: one row per record, the record "
            "in `payload`, with the batch columns that link it to the audit tables. Append-only."
        )
        return spec.replace_attributes(
            key=dg.AssetKey([LANDING_SCHEMA, data.resource.name]), deps=[], group_name=LANDING_SCHEMA,
            description=description,
        ).merge_attributes(metadata={"dagster/column_schema": landing_column_schema()})


class LayerTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props["config"].get("schema") or "public"
        return dg.AssetKey([schema, dbt_resource_props.get("alias") or dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["config"].get("schema")
