"""What the Dagster instance says about runs, for the HTTP service: the recent runs, and the run a recorded request
(webhook call or API request) became. Read from the instance the UI and the daemon share (DAGSTER_HOME)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import dagster as dg

from orchestration.instance import dagster_instance
from orchestration.triggers import DELIVERY_TAG, REQUEST_TAG, SCHEDULED_FOR_TAG, TRIGGER_TAG

# The tags worth showing: what started a run (ours and Dagster's own for schedules, sensors and backfills).
_SHOWN_TAGS = (TRIGGER_TAG, REQUEST_TAG, DELIVERY_TAG, SCHEDULED_FOR_TAG, "dagster/schedule_name",
               "dagster/sensor_name", "dagster/run_key", "dagster/backfill")


def _time(timestamp: float | None) -> str | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat() if timestamp is not None else None


def _describe(record: Any) -> dict[str, Any]:
    run = record.dagster_run
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "tags": {k: v for k, v in run.tags.items() if k in _SHOWN_TAGS},
        "created_at": record.create_timestamp.astimezone(dt.UTC).isoformat(),
        "started_at": _time(record.start_time),
        "ended_at": _time(record.end_time),
    }


@functools.cache
def _shared_instance() -> dg.DagsterInstance:
    """One instance for the service's whole life (each `DagsterInstance.get()` opens its storage anew)."""
    return dagster_instance()


def recent_runs(*, limit: int = 20, instance: dg.DagsterInstance | None = None) -> list[dict[str, Any]]:
    """The newest runs of the instance (queued and running ones included), newest first."""
    instance = instance or _shared_instance()
    return [_describe(r) for r in instance.get_run_records(limit=limit)]


def run_of_request(request_id: int, *, instance: dg.DagsterInstance | None = None) -> dict[str, Any] | None:
    """The run the `run_requests` sensor started for a recorded request, or None while it has not (yet)."""
    instance = instance or _shared_instance()
    records = instance.get_run_records(filters=dg.RunsFilter(tags={REQUEST_TAG: str(request_id)}), limit=1)
    return _describe(records[0]) if records else None
