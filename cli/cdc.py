"""What the CLI says and does about change data capture: the slots `dataplatform status` reports (with a warning
above DATAPLATFORM_CDC_LAG_WARN_BYTES), and `dataplatform cdc drop-slot`. The connector does the work
(`replication_slots`, `drop_replication_slot` of a connector that keeps slots); this module picks the systems,
resolves their secrets and words the results."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from metadata.catalog import Catalog
from metadata.models import System

LAG_WARN_ENV = "DATAPLATFORM_CDC_LAG_WARN_BYTES"
DEFAULT_LAG_WARN_BYTES = 1024**3  # 1 GiB of WAL retained: days of a busy home server's changes


def lag_threshold() -> int:
    """The retained WAL above which status warns (DATAPLATFORM_CDC_LAG_WARN_BYTES, default 1 GiB)."""
    raw = os.environ.get(LAG_WARN_ENV, "").strip()
    if not raw:
        return DEFAULT_LAG_WARN_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{LAG_WARN_ENV}={raw!r} is not a number of bytes (e.g. 1073741824 for 1 GiB)") from None
    if value < 0:
        raise ValueError(f"{LAG_WARN_ENV}={raw!r}: give a number of bytes, 0 or more")
    return value


def cdc_endpoints(system: System) -> list[str]:
    """The endpoints of a system declared with load 'cdc'."""
    return [name for name, spec in system.endpoints().items() if isinstance(spec, dict) and spec.get("load") == "cdc"]


def resolved_connection(system: System) -> Any:
    from metadata.models import parse_connection
    from secret_store.base import resolve_secrets
    from secret_store.choice import platform_secret_store

    return parse_connection(system.type, resolve_secrets(system.connection, platform_secret_store()), resolved=True)


def slot_report(catalog: Catalog, cursors_of: Callable[[str], Mapping[str, str]], *, echo: Callable[[str], None],
                warn: Callable[[str], None]) -> int:
    """One line per CDC endpoint's slot; a warning for a slot that retains more than the threshold, a slot that is
    gone, a source that does not answer. Returns the number of warnings."""
    from ingestion.connectors import connector_for
    from ingestion.connectors.sql_cdc import size

    threshold, warnings = lag_threshold(), 0
    for system in catalog.systems.values():
        if not cdc_endpoints(system):
            continue
        slots = getattr(connector_for(system.type), "replication_slots", None)
        if slots is None:
            continue
        try:
            statuses = slots(system.id, resolved_connection(system), cursors_of(system.id))
        except Exception as err:  # noqa: BLE001 - status reports every system; one that fails is named, not fatal
            warn(f"{system.id}: its CDC slots could not be read: {err}")
            warnings += 1
            continue
        for s in statuses:
            name = f"{system.id}.{s.endpoint}"
            if s.problem is not None:
                warn(f"{name}: {s.problem}")
                warnings += 1
            elif s.retained_bytes is None:
                echo(f"{name}: no replication slot yet (table {s.table}): the next run creates {s.slot} and takes a "
                     "snapshot")
            elif s.retained_bytes > threshold:
                warn(f"{name}: replication slot {s.slot} (table {s.table}) retains {size(s.retained_bytes)} of WAL, "
                     f"more than {size(threshold)} ({LAG_WARN_ENV}): the source keeps it on disk until a batch "
                     f"lands. Run the system (dataplatform run --system {system.id}); if it is retired, drop the "
                     f"slot: dataplatform cdc drop-slot {system.id} {s.endpoint}")
                warnings += 1
            else:
                echo(f"{name}: replication slot {s.slot} (table {s.table}) retains {size(s.retained_bytes)} of WAL")
    return warnings
