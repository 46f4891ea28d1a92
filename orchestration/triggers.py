"""Runs that start themselves: a schedule per system that declares one, and the `run_requests` sensor that turns
each request recorded by the HTTP service (a webhook call, the operator's API) into one run.

Both start the system's job (landing -> quality gate -> bronze/silver/gold), through the daemon and the run queue
like a run launched from the UI, and tag it with what started it. Each run request carries a run key, so the daemon
starts it once: a schedule's per system and scheduled time, the sensor's per recorded request.

Why a sensor rather than the service submitting runs itself: a run submitted from outside the code location must
name that location exactly as the daemon's workspace does; a sensor's runs are created by the daemon in its own
workspace, so they launch however Dagster is deployed. The request is in the audit table first, so nothing is
lost while Dagster is down: the sensor hands on what came meanwhile once it is back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import dagster as dg
import psycopg

from audit import run_requests
from metadata.models import System
from orchestration.resources import WarehouseResource

TRIGGER_TAG = "dataplatform/trigger"  # schedule, webhook or api
REQUEST_TAG = "dataplatform/request"  # the audit.run_request id a run was started for
DELIVERY_TAG = "dataplatform/delivery_id"
SCHEDULED_FOR_TAG = "dataplatform/scheduled_for"
RUN_REQUESTS_SENSOR = "run_requests"
# How often the daemon asks for new requests (its own loop adds a little): about how long a recorded call waits
# before its run is queued.
SENSOR_INTERVAL_SECONDS = 5


def run_key_of_request(request: run_requests.RunRequest) -> str:
    """Its id and when it came: ids start again at 1 in a new warehouse, and a run key must never repeat one that
    a run of the old warehouse's requests used (the daemon would skip the new request as done)."""
    return f"run_request:{request.request_id}@{request.received_at.isoformat()}"


def _cursor(request: run_requests.RunRequest) -> str:
    return json.dumps({"request_id": request.request_id, "received_at": request.received_at.isoformat()})


def _start_after(conn: psycopg.Connection, cursor: str | None) -> tuple[int, str | None]:
    """The request id to continue after, and a warning when the cursor names a request this warehouse does not
    hold as it was (a new or restored warehouse): then every request it holds is handed on, from the first."""
    if not cursor:
        return 0, None
    try:
        last = json.loads(cursor)
        found = run_requests.get(conn, int(last["request_id"]))
    except (ValueError, TypeError, KeyError):
        return 0, f"the sensor's cursor {cursor!r} is not one it writes: handing on the requests from the first"
    if found is None or found.received_at.isoformat() != last.get("received_at"):
        return 0, (f"audit.run_request does not hold request {last['request_id']} of {last.get('received_at')} that"
                   " this sensor handed on last (a new or restored warehouse?): handing on its requests from the first")
    return found.request_id, None


def system_schedule(system: System, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """The system's declared schedule, running its job; stopped unless declared `enabled` (the UI's toggle, once
    used, wins over the declaration)."""
    declared = system.schedule
    assert declared is not None

    @dg.schedule(
        name=f"{job.name}_schedule",
        cron_schedule=declared.cron,
        execution_timezone=declared.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING if declared.enabled else dg.DefaultScheduleStatus.STOPPED,
        description=f"Load {system.id} ({system.name}) at '{declared.cron}' ({declared.timezone}), as declared in"
        " systems.json, and build everything downstream of it.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        scheduled_for = context.scheduled_execution_time.isoformat()
        # One run per system and scheduled time, however often the daemon evaluates the tick.
        return dg.RunRequest(run_key=f"{system.id}:{scheduled_for}",
                             tags={TRIGGER_TAG: "schedule", SCHEDULED_FOR_TAG: scheduled_for})

    return _schedule


def run_requests_sensor(jobs: Mapping[str, dg.UnresolvedAssetJobDefinition]) -> dg.SensorDefinition:
    """One run of its system's job per request recorded in audit.run_request (`jobs`: system id -> job).
    Running by default: a webhook must work without a click in the UI."""

    @dg.sensor(
        name=RUN_REQUESTS_SENSOR,
        jobs=list(jobs.values()),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts one run of a system's job for each webhook call or operator API request that"
        " `dataplatform serve` recorded in audit.run_request (run key run_request:<id>@<received at>).",
    )
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> Iterator[dg.RunRequest]:
        with warehouse.connect() as conn:
            start, warning = _start_after(conn, context.cursor)
            pending = run_requests.after(conn, start)
        if warning:
            context.log.warning(warning)
        for request in pending:
            job = jobs.get(request.system_id)
            if job is None:  # the system was removed from the metadata since it was called
                context.log.warning(f"run request {request.request_id}: system {request.system_id} is not declared"
                                    " any more; no run")
            else:
                yield dg.RunRequest(
                    run_key=run_key_of_request(request),
                    job_name=job.name,
                    tags={TRIGGER_TAG: request.trigger, REQUEST_TAG: str(request.request_id),
                          DELIVERY_TAG: request.delivery_id},
                )
            context.update_cursor(_cursor(request))
        if warning and not pending:
            context.update_cursor(None)  # nothing to hand on yet: start from the first request next time

    return _sensor


def triggers(systems: Mapping[str, System],
             jobs: Mapping[str, dg.UnresolvedAssetJobDefinition]) -> tuple[list[dg.ScheduleDefinition],
                                                                             list[dg.SensorDefinition]]:
    """The schedules the systems declare, and the sensor every system's requests go through."""
    schedules = [system_schedule(s, jobs[s.id]) for s in systems.values() if s.schedule is not None]
    return schedules, [run_requests_sensor(jobs)]
