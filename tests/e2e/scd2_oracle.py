"""An independent model of SCD2 history, to check silver against: the test system's daily snapshots
flattened the way the bronze patterns document, and versions opened, closed and SCD1-overwritten the
way the design says. Shared by the end-to-end tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ingestion.test_system.generator import Day
from metadata.catalog import Catalog
from metadata.columns import Column

UTC = dt.UTC


def _value(record: dict[str, Any], column: Column) -> Any:
    value: Any = record
    for part in column.path:
        value = value.get(part) if isinstance(value, dict) else None
    if value is not None and column.pg_type == "date":
        return dt.date.fromisoformat(value)
    return value


def flat_records(catalog: Catalog, entity: str, day: Day) -> dict[tuple, dict[str, Any]]:
    """The entity's rows in one day's snapshot, by key, flattened the way the bronze pattern documents."""
    columns = catalog.columns[entity]
    if entity == "owner":
        records = [({}, r) for r in day.owners.values()]
    elif entity == "vehicle":
        records = [({}, r) for r in day.vehicles.values()]
    else:
        records = [(v, item) for v in day.vehicles.values() for item in v["options"]]
    rows = {}
    for parent, record in records:
        row = {c.name: _value(parent if c.source == "record" and parent else record, c) for c in columns}
        rows[tuple(row[c.name] for c in columns if c.primary_key)] = row
    return rows


def expected_silver(catalog: Catalog, entity: str, days: list[Day], batches: list[int]) -> list[dict[str, Any]]:
    columns = catalog.columns[entity]
    scd1 = [c.name for c in columns if c.scd_type == 1 and not c.primary_key]
    scd2 = [c.name for c in columns if c.scd_type == 2 and not c.primary_key]
    versions: list[dict[str, Any]] = []
    current: dict[tuple, dict[str, Any]] = {}
    for day, batch in zip(days, batches, strict=False):
        ts = dt.datetime.combine(day.date, dt.time(), UTC)
        rows = flat_records(catalog, entity, day)
        for key, row in rows.items():
            open_version = current.get(key)
            if open_version is None or any(open_version[c] != row[c] for c in scd2):
                if open_version is not None:
                    open_version.update(valid_to=ts, _closed_by_batch_id=batch)
                current[key] = {**row, "valid_from": ts, "valid_to": None, "_opened_by_batch_id": batch,
                                "_closed_by_batch_id": None}
                versions.append(current[key])
            for version in versions:  # SCD1: the newest value in every version of the key
                if tuple(version[c.name] for c in columns if c.primary_key) == key:
                    version.update({c: row[c] for c in scd1})
        for key in [k for k in current if k not in rows]:  # full load: a missing key is closed
            current.pop(key).update(valid_to=ts, _closed_by_batch_id=batch)
    return versions
