"""The platform's own events: a layer of a system, or an entity in a layer, finished (succeeded or failed).

Events are written only by the statements that finish their audit rows (`batches.finish_layer`,
`entities.record_entity`, `entities.adopt_entity_rows`): each of those appends one of the two fragments
below to its own statement as a data-modifying CTE named `l` (a system-layer row) or `e` (an entity row),
so the event and the row it reports commit together or not at all. Everything else only reads them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

SYSTEM_LAYER = "system_layer_processed"
ENTITY_LAYER = "entity_layer_processed"

_EVENT_COLUMNS = ("kind, status, system_id, entity, layer, batch_id, system_run_id, system_layer_run_id,"
                  " entity_layer_run_id, dagster_run_id, records_in, inserted, updated, deleted,"
                  " entities_succeeded, entities_failed, entities_skipped, message")

# Appended to a statement `with l as (update audit.system_layer_run ... returning l.*)`: the layer's counts
# are the sums of its entity rows (written before the layer is finished).
SYSTEM_LAYER_EVENT_SQL = f"""
insert into audit.event ({_EVENT_COLUMNS})
select '{SYSTEM_LAYER}', l.status, r.system_id, null, l.layer, l.batch_id, l.system_run_id, l.system_layer_run_id,
       null, r.dagster_run_id, coalesce(c.records_in, 0), coalesce(c.inserted, 0), coalesce(c.updated, 0),
       coalesce(c.deleted, 0), l.entities_succeeded, l.entities_failed, l.entities_skipped, l.message
from l
join audit.system_run as r on r.system_run_id = l.system_run_id
left join lateral (
    select sum(records_in) as records_in, sum(inserted) as inserted, sum(updated) as updated,
           sum(deleted) as deleted
    from audit.entity_layer_run as x where x.system_layer_run_id = l.system_layer_run_id
) as c on true
where l.status in ('succeeded', 'failed')
"""

# Appended to a statement `with e as (insert into / update audit.entity_layer_run ... returning *)`.
ENTITY_LAYER_EVENT_SQL = f"""
insert into audit.event ({_EVENT_COLUMNS})
select '{ENTITY_LAYER}', e.status, e.system_id, e.entity, e.layer, e.batch_id, s.system_run_id,
       e.system_layer_run_id, e.entity_layer_run_id, e.dagster_run_id, e.records_in, e.inserted, e.updated,
       e.deleted, 0, 0, 0, e.message
from e
left join audit.system_layer_run as s on s.system_layer_run_id = e.system_layer_run_id
where e.status in ('succeeded', 'failed') and e.system_layer_run_id is not null
order by e.entity_layer_run_id
on conflict (entity_layer_run_id) do nothing
"""


@dataclass(frozen=True)
class Event:
    """One event; its fields are what templates and actions may use (`Event.fields`)."""

    event_id: int
    kind: str
    status: str
    system_id: str
    entity: str | None
    layer: str
    batch_id: int
    system_run_id: int | None
    dagster_run_id: str
    records_in: int
    inserted: int
    updated: int
    deleted: int
    entities_succeeded: int
    entities_failed: int
    entities_skipped: int
    message: str | None
    created_at: dt.datetime

    def fields(self) -> dict[str, str]:
        """The event as text fields, for templates and run tags ('' for a missing value)."""
        return {k: "" if v is None else str(v) for k, v in asdict(self).items()}

    def describe(self) -> str:
        what = f"{self.system_id}.{self.entity}" if self.entity else self.system_id
        return f"{what} {self.layer} {self.status} (batch {self.batch_id}, event {self.event_id})"


_SELECT = ("select event_id, kind, status, system_id, entity, layer, batch_id, system_run_id, dagster_run_id,"
           " records_in, inserted, updated, deleted, entities_succeeded, entities_failed, entities_skipped, message,"
           " created_at from audit.event")


def events_after(conn: psycopg.Connection, after_id: int, *, limit: int = 500) -> list[Event]:
    """Events newer than `after_id`, oldest first (what a sensor reads from its cursor on)."""
    rows = conn.execute(f"{_SELECT} where event_id > %s order by event_id limit %s", (after_id, limit)).fetchall()
    return [Event(*row) for row in rows]


def event_by_id(conn: psycopg.Connection, event_id: int) -> Event:
    row = conn.execute(f"{_SELECT} where event_id = %s", (event_id,)).fetchone()
    if row is None:
        raise LookupError(f"no event {event_id} in audit.event")
    return Event(*row)


def events_of_run(conn: psycopg.Connection, dagster_run_id: str) -> list[Event]:
    rows = conn.execute(f"{_SELECT} where dagster_run_id = %s order by event_id", (dagster_run_id,)).fetchall()
    return [Event(*row) for row in rows]


def is_root_failure(conn: psycopg.Connection, event: Event) -> bool:
    """Whether a failed event is the one to notify: an entity's failure always; a layer's only when none of its
    entities failed (a landing error, gold's build), so one failure makes one notification, not three."""
    if event.status != "failed":
        return False
    if event.kind == ENTITY_LAYER:
        return True
    row = conn.execute(
        "select exists (select 1 from audit.event as x join audit.event as l"
        "  on l.system_layer_run_id = x.system_layer_run_id"
        " where l.event_id = %s and x.kind = %s and x.status = 'failed')",
        (event.event_id, ENTITY_LAYER),
    ).fetchone()
    return not row[0]


def batch_summary(conn: psycopg.Connection, event: Event) -> dict[str, Any]:
    """The batch an event belongs to, as templates see it: its delivery, timestamp, status and per-layer counts."""
    run = conn.execute(
        "select source_ref, batch_timestamp, status, message from audit.system_run"
        " where batch_id = %s and system_id = %s order by system_run_id desc limit 1",
        (event.batch_id, event.system_id),
    ).fetchone()
    layers = conn.execute(
        "select layer, entity, status, records_in, inserted, updated, deleted from audit.entity_layer_run"
        " where batch_id = %s and system_id = %s and dagster_run_id = %s order by entity_layer_run_id",
        (event.batch_id, event.system_id, event.dagster_run_id),
    ).fetchall()
    lines = [f"{layer:<8} {entity:<20} {status:<10} in={a} +{b} ~{c} -{d}"
             for layer, entity, status, a, b, c, d in layers]
    return {
        "source_ref": run[0] if run else "",
        "batch_timestamp": run[1].isoformat() if run else "",
        "batch_status": run[2] if run else "",
        "batch_message": (run[3] or "") if run else "",
        "batch_summary": "\n".join(lines),
    }
