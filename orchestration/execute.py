"""Run the platform's jobs from this process, on the Dagster instance the UI also reads.

Used by the CLI and the tests: the job runs in-process (no per-step process start-up) unless
DATAPLATFORM_EXECUTOR=celery sends its steps to Celery workers; either way its runs appear in the
Dagster UI because both use DAGSTER_HOME under the platform's state folder.

A job holds a run lock per system (audit.locks): a second run of the same system started meanwhile
does not wait behind it, it skips with a message naming the system.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from audit import batches
from audit.entities import blocked_entities, failed_entities, fix_hint, gate_behind_entities, notes
from audit.locks import SystemBusyError, run_locks
from observability.logs import set_batch, set_run
from orchestration.definitions import (
    RUN_ALL_JOB,
    landing_op_name,
    platform_catalog,
    platform_definitions,
    system_job_name,
)
from orchestration.executor import IN_PROCESS, executor_kind
from orchestration.instance import dagster_instance
from orchestration.run_config import LandingConfig, ReplayRequest, TransformConfig
from orchestration.run_failures import record_failed_run
from warehouse.connection import warehouse_url
from warehouse.session import connect

TRANSFORM_OP = "dbt_layers"


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    dagster_run_id: str | None
    system_runs: list[batches.SystemRun]
    failed_steps: list[str]
    busy: list[str] = field(default_factory=list)  # systems another run was working on: nothing done


@dataclass(frozen=True)
class _JobResult:
    run_id: str
    success: bool
    events: list[dg.DagsterEvent]


def _run_job(job_name: str, *, run_config: dict[str, Any], asset_selection: list[dg.AssetKey] | None) -> _JobResult:
    """Run the job to its end. In-process by default; with DATAPLATFORM_EXECUTOR=celery this process only
    orchestrates: each step is a Celery task that a worker runs, loading the job from its code pointer."""
    if executor_kind() == IN_PROCESS:
        result = platform_definitions().resolve_job_def(job_name).execute_in_process(
            instance=dagster_instance(), asset_selection=asset_selection, raise_on_error=False, run_config=run_config)
        return _JobResult(result.run_id, result.success, list(result.all_events))
    job = dg.build_reconstructable_job("orchestration.definitions", "platform_job", reconstructable_args=(job_name,))
    with dg.execute_job(job, instance=dagster_instance(), run_config=run_config, asset_selection=asset_selection,
                        raise_on_error=False) as result:
        return _JobResult(result.run_id, result.success, list(result.all_events))


def _execute(job_name: str, *, system_ids: list[str], run_config: dict[str, Any], echo: Callable[[str], None],
             asset_selection: list[dg.AssetKey] | None = None, label: str = "",
             held_entities: set[str] | None = None) -> RunOutcome:
    """Run a job; it succeeded only if every step and batch did and no entity (of `held_entities`, default
    every entity of the systems) is behind: held back by a batch that failed in bronze or silver, or with
    its newest batch stopped by the quality gate. Each such entity is named with the batch and the fix."""
    url = warehouse_url()
    try:
        with run_locks(url, system_ids):
            set_run(None)
            set_batch(None)
            echo(f"running job {job_name}{label}...")
            started = dt.datetime.now()
            result = _run_job(job_name, asset_selection=asset_selection,
                              run_config={**run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    except SystemBusyError as busy:
        echo(f"skipped: another run of {busy} is in progress; run again when it has finished (`dataplatform status`)")
        return RunOutcome(False, None, [], [], busy=str(busy).split(", "))
    set_run(result.run_id)  # the lines about this run carry its id (and its batch's, when it has one)
    failed = [e.step_key for e in result.events if e.is_step_failure and e.step_key]
    for event in result.events:
        if event.is_step_success or event.is_step_failure:
            echo(f"  step {event.step_key}: {'ok' if event.is_step_success else 'FAILED'}")
    with connect(url, autocommit=True) as conn:
        if result.success:
            batches.close_unfinished(conn, result.run_id, succeeded=True, failed_steps=[])
            run_failure = None
        else:  # recorded as the run-failure sensor records it; the daemon's sensor notifies it (README)
            run_failure = record_failed_run(conn, dagster_run_id=result.run_id, job_name=job_name,
                                            systems=system_ids, events=result.events)
        runs = batches.system_runs_of(conn, result.run_id)
        set_batch(runs[0].batch_id if len(runs) == 1 else None)
        statuses = {r.system_run_id: batches.system_run_status(conn, r) for r in runs}
        entity_failures = failed_entities(conn, result.run_id)
        for layer, entity, message in notes(conn, result.run_id):
            echo(f"  note: {layer} {entity}: {message}")
        held = [(s, e, b, f"failed in {layer}, so it and every later batch of {e} wait")
                for s in system_ids for e, b, layer in blocked_entities(conn, s)]
        held += [(s, e, b, "was stopped by the quality gate and is not applied")
                 for s in system_ids for e, b in gate_behind_entities(conn, s)]
        held = [h for h in held if held_entities is None or h[1] in held_entities]
    success = result.success and not entity_failures and all(s in ("succeeded", "skipped") for s in statuses.values())
    success = success and not held
    for system_id, entity, batch_id, what in held:  # also when nothing new came: the entity is still behind
        echo(f"  HELD BACK {system_id}.{entity}: batch {batch_id} {what}; {fix_hint(entity, batch_id)}")
    for layer, entity, message in entity_failures:
        echo(f"  FAILED {layer} {entity}: {message or 'see the Dagster run'}")
    if run_failure is not None:  # before any batch was processed, or outside the layers: no audit row above says it
        for line in run_failure.message.splitlines():
            echo(f"  FAILED {line}" if run_failure.steps else f"  FAILED run: {line}")
    seconds = (dt.datetime.now() - started).total_seconds()
    echo(f"job {job_name} {'succeeded' if success else 'FAILED'} in {seconds:.1f}s"
         f" (Dagster run {result.run_id})")
    return RunOutcome(success, result.run_id, runs, failed)


def _op_config(op_name: str, config: dg.Config) -> dict[str, Any]:
    return {op_name: {"config": config.model_dump()}}


def run_job(*, system_id: str | None = None, force: bool = False, batch: int | None = None,
            echo: Callable[[str], None] = print) -> RunOutcome:
    """Run the job of one system (or of all) to the end; never raises for a failed step. With `force`, the
    system's last batch (or `batch`, a batch of `system_id`) is landed again."""
    systems = [system_id] if system_id else list(platform_catalog().systems)
    job_name = system_job_name(system_id) if system_id else RUN_ALL_JOB
    ops: dict[str, Any] = {}
    if force:
        for system in systems:
            ops |= _op_config(landing_op_name(system), LandingConfig(force=True, batch=batch))
    return _execute(job_name, system_ids=systems, run_config={"ops": ops} if ops else {}, echo=echo,
                    label=(" force=true" + (f" batch={batch}" if batch is not None else "")) if force else "")


def replay(*, system_id: str, entities: dict[str, str], from_batch: int,
           echo: Callable[[str], None] = print) -> RunOutcome:
    """Back the silver of `entities` (name -> table) out to before `from_batch` and re-apply that batch
    and every later one, in order, in one transaction per entity; then rebuild what depends on them."""
    graph = platform_definitions().resolve_asset_graph()
    starts = [dg.AssetKey(["silver", table]) for table in entities.values()]
    selection = sorted({key for start in starts for key in (start, *graph.get(start).child_keys)}, key=str)
    echo(f"replaying {', '.join(f'{system_id}.{e}' for e in entities)} from batch {from_batch}")
    config = TransformConfig(replay=[ReplayRequest(system_id=system_id, entity=e, from_batch=from_batch)
                                     for e in entities])
    return _execute(RUN_ALL_JOB, system_ids=[system_id], run_config={"ops": _op_config(TRANSFORM_OP, config)},
                    echo=echo, asset_selection=selection, held_entities=set(entities))
