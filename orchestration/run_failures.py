"""Runs that fail before any event can report them, and the `platform_run_failures` sensor that notifies them.

A failed layer or entity is an event (audit.event), notified by the `platform_events` sensor. A run can also fail
where no event is written: before any layer row exists (the landing lock busy, a missing delivery folder, a source
answering 401 while it is asked what is new, a missing secret) or by an error of a step itself. Such a run is
recorded in `audit.run_failure` (by the CLI when its run ends, or here, whichever is first) and notified here,
once: the notification's row in audit.notification is the guard, however often the sensor looks at the run.

Which failure is whose: a step that fails *because* of failed layer or entity rows (the landing error after its
layer row, the gate's or dbt's entity failures, an entity still behind an earlier run's failure) raises its
`dg.Failure` with `reported_by_events()` in its metadata; every other failed step, and a run that failed without a
failed step, is this module's. So one failure makes one notification whichever path sends it, also in a run
that has both kinds (two failures, two notifications).

Why `monitor_all_code_locations`: the CLI's runs (`execute_in_process`) are in the same instance but belong to no
code location, so a sensor that watches only its own location's jobs never sees them; the platform's jobs are
picked out here by name instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import psycopg

from actions.runner import notify_run_failure
from audit import batches
from audit.run_failures import RunFailure, record_run_failure
from metadata.catalog import Catalog
from orchestration.resources import SecretStoreResource, WarehouseResource
from secret_store.redact import redact
from warehouse.session import connect

RUN_FAILURES_SENSOR = "platform_run_failures"
REPORTED_BY_EVENTS = "reported_by_events"
# Dagster's job of a selection materialized from the UI ("Materialize", "Materialize all").
UI_ASSET_JOB_PREFIX = "__ASSET_JOB"
_FAILURE_TYPES = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}


def reported_by_events() -> dict[str, Any]:
    """Metadata of a step's `dg.Failure` whose cause audit.event reports (now or in an earlier run): such a failure
    is notified through its events, never again as a run failure."""
    return {REPORTED_BY_EVENTS: True}


@dataclass(frozen=True)
class UnreportedFailure:
    steps: list[str]  # failed steps no event reports; empty: the run failed without a failed step
    message: str


def _step_message(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    user = data.user_failure_data
    if user is not None and user.description:
        return user.description  # a step's masked dg.Failure (orchestration/masking.py)
    if data.error is not None:  # raised outside a step body: a resource, Dagster itself
        return " ".join(data.error.message.split())
    return "no error recorded; see the Dagster run"


def unreported_failure(events: Iterable[dg.DagsterEvent]) -> UnreportedFailure | None:
    """What of a failed run's failure no event reports, from its STEP_FAILURE and RUN_FAILURE events; None when
    every failed step is reported by events."""
    events = list(events)
    failed_steps = [e for e in events if e.is_step_failure]
    mine = [e for e in failed_steps if REPORTED_BY_EVENTS not in (
        (e.step_failure_data.user_failure_data.metadata or {}) if e.step_failure_data.user_failure_data else {})]
    if failed_steps and not mine:
        return None
    if mine:
        return UnreportedFailure([str(e.step_key) for e in mine],
                                 redact("\n".join(f"{e.step_key}: {_step_message(e)}" for e in mine)))
    run_failure = next((e for e in events if e.event_type == dg.DagsterEventType.RUN_FAILURE), None)
    error = getattr(run_failure.event_specific_data, "error", None) if run_failure is not None else None
    message = (error.message if error is not None else (run_failure.message if run_failure is not None else None))
    return UnreportedFailure([], redact(" ".join((message or "the run failed; see the Dagster run").split())))


def record_failed_run(conn: psycopg.Connection, *, dagster_run_id: str, job_name: str, systems: list[str],
                      events: Iterable[dg.DagsterEvent]) -> RunFailure | None:
    """After a platform run failed: its batches still open are closed as failed (the run is over: what the audit
    tables say agrees with Dagster's status), and its failure no event reports is recorded; that record (or the one
    already there), or None when events report every failure of the run."""
    events = list(events)
    failed_steps = [str(e.step_key) for e in events if e.is_step_failure]
    batches.close_unfinished(conn, dagster_run_id, succeeded=False, failed_steps=failed_steps)
    unreported = unreported_failure(events)
    if unreported is None:
        return None
    return record_run_failure(conn, dagster_run_id=dagster_run_id, job_name=job_name, systems=systems,
                              steps=unreported.steps, message=unreported.message)


def run_systems(job_name: str, failed_steps: Iterable[str], *, system_of_job: Mapping[str, str],
                system_of_step: Mapping[str, str], all_systems: Iterable[str]) -> list[str]:
    """The systems a run was for: its system job's, every one for run_all, else those of its failed landing steps."""
    if job_name in system_of_job:
        return [system_of_job[job_name]]
    if job_name == "run_all":
        return list(all_systems)
    return sorted({system_of_step[s] for s in failed_steps if s in system_of_step})


def run_failure_sensor(catalog: Catalog, *, system_of_job: Mapping[str, str], system_of_step: Mapping[str, str],
                       run_all_job: str) -> dg.SensorDefinition:
    """`system_of_job`: system job name -> system id; `system_of_step`: landing step -> system id."""

    def is_platform_run(job_name: str) -> bool:
        return job_name in system_of_job or job_name == run_all_job or job_name.startswith(UI_ASSET_JOB_PREFIX)

    @dg.run_failure_sensor(
        name=RUN_FAILURES_SENSOR, monitor_all_code_locations=True, minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="For each failed run of the platform's jobs (daemon's, UI's and the CLI's): closes the batches"
                    " it left open, records in audit.run_failure a failure no event reports (one before any batch"
                    " was processed) and notifies it on the channels of actions.json, once.")
    def _sensor(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        if not is_platform_run(run.job_name):
            return
        events = [r.dagster_event for r in context.instance.all_logs(run.run_id, of_type=_FAILURE_TYPES)
                  if r.dagster_event is not None]
        failed_steps = [str(e.step_key) for e in events if e.is_step_failure]
        systems = run_systems(run.job_name, failed_steps, system_of_job=system_of_job, system_of_step=system_of_step,
                              all_systems=catalog.systems)
        with connect(WarehouseResource().url(), autocommit=True) as conn:
            failure = record_failed_run(conn, dagster_run_id=run.run_id, job_name=run.job_name, systems=systems,
                                        events=events)
            if failure is None:
                context.log.info(f"run {run.run_id}: its failures are layer or entity events, notified by the"
                                 " platform_events sensor")
                return
            if not catalog.notifications:
                context.log.info(f"run {run.run_id}: recorded as run failure {failure.run_failure_id}; actions.json"
                                 " declares no notification channel")
                return
            outcome = notify_run_failure(conn, catalog, SecretStoreResource().store(), failure)
        for channel, error in outcome.items():
            (context.log.error if error else context.log.info)(
                redact(f"run {run.run_id}: notification on {channel}: {error or 'sent'}"))

    return _sensor
