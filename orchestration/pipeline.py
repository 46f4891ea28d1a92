"""Run the platform's jobs in this process, on the Dagster instance the UI also reads.

Used by the CLI and the tests: the job runs in-process (no per-step process start-up), and its
runs appear in the Dagster UI because both use DAGSTER_HOME under the platform's state folder.

A job holds a run lock per system (a PostgreSQL advisory lock on a connection kept open for the
job): a second run of the same system started meanwhile does not wait behind it, it skips with a
message naming the system. The lock dies with the process, so a killed run never blocks the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dagster as dg
import psycopg

from orchestration import audit
from orchestration.runtime import FORCE_TAG, REPLAY_TAG, advisory_key, warehouse_url


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    dagster_run_id: str | None
    system_runs: list[audit.SystemRun]
    failed_steps: list[str]
    busy: list[str] = field(default_factory=list)  # systems another run was working on: nothing done


class SystemBusyError(RuntimeError):
    pass


@contextlib.contextmanager
def run_locks(url: str, system_ids: list[str]) -> Iterator[None]:
    """Hold every system's run lock, or raise SystemBusyError naming the busy ones (taking none)."""
    with psycopg.connect(url, autocommit=True) as conn:
        held, busy = [], []
        for system_id in system_ids:
            key = advisory_key(f"run:{system_id}")
            if conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
                held.append(key)
            else:
                busy.append(system_id)
        try:
            if busy:
                raise SystemBusyError(", ".join(busy))
            yield
        finally:
            for key in held:
                conn.execute("select pg_advisory_unlock(%s)", (key,))


def _execute(job_name: str, *, system_ids: list[str], tags: dict[str, str], echo: Callable[[str], None],
             asset_selection: list[dg.AssetKey] | None = None) -> RunOutcome:
    from orchestration.definitions import defs

    url = warehouse_url()
    try:
        with run_locks(url, system_ids):
            echo(f"running job {job_name} {' '.join(f'{k}={v}' for k, v in tags.items())}...".replace("  ", " "))
            started = dt.datetime.now()
            result = defs.resolve_job_def(job_name).execute_in_process(
                instance=dg.DagsterInstance.get(),
                tags=tags,
                asset_selection=asset_selection,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
    except SystemBusyError as busy:
        echo(f"skipped: another run of {busy} is in progress; run again when it has finished (`dataplatform status`)")
        return RunOutcome(False, None, [], [], busy=str(busy).split(", "))
    failed = [e.step_key for e in result.all_events if e.is_step_failure and e.step_key]
    for event in result.all_events:
        if event.is_step_success or event.is_step_failure:
            echo(f"  step {event.step_key}: {'ok' if event.is_step_success else 'FAILED'}")
    with psycopg.connect(url, autocommit=True) as conn:
        for run in audit.system_runs_of(conn, result.run_id, status="running"):
            # A step that failed before dbt leaves its batch open: close it honestly.
            audit.finish_system_run(conn, run, "succeeded" if result.success else "failed",
                                    message=None if result.success else f"failed steps: {', '.join(failed) or 'none'}")
        runs = audit.system_runs_of(conn, result.run_id)
        statuses = {r.system_run_id: audit.system_run_status(conn, r) for r in runs}
        entity_failures = audit.failed_entities(conn, result.run_id)
        for layer, entity, message in audit.notes(conn, result.run_id):
            echo(f"  note: {layer} {entity}: {message}")
    success = result.success and not entity_failures and all(s in ("succeeded", "skipped") for s in statuses.values())
    for layer, entity, message in entity_failures:
        echo(f"  FAILED {layer} {entity}: {message or 'see the Dagster run'}")
    echo(f"job {job_name} {'succeeded' if success else 'FAILED'} in {(dt.datetime.now() - started).total_seconds():.1f}s"
         f" (Dagster run {result.run_id})")
    return RunOutcome(success, result.run_id, runs, failed)


def run_job(*, system_id: str | None = None, force: bool = False, echo: Callable[[str], None] = print) -> RunOutcome:
    """Run the job of one system (or of all) to the end; never raises for a failed step."""
    from orchestration.definitions import RUN_ALL_JOB, catalog, system_job_name

    systems = [system_id] if system_id else list(catalog.systems)
    job_name = system_job_name(system_id) if system_id else RUN_ALL_JOB
    return _execute(job_name, system_ids=systems, tags={FORCE_TAG: "true"} if force else {}, echo=echo)


def replay(*, system_id: str, entities: dict[str, str], from_batch: int, echo: Callable[[str], None] = print) -> RunOutcome:
    """Back the silver of `entities` (name -> table) out to before `from_batch` and re-apply that batch
    and every later one, in order, in one transaction per entity; then rebuild what depends on them."""
    from orchestration.definitions import RUN_ALL_JOB, defs

    graph = defs.resolve_asset_graph()
    starts = [dg.AssetKey(["silver", table]) for table in entities.values()]
    selection = sorted({key for start in starts for key in (start, *graph.get(start).child_keys)}, key=str)
    echo(f"replaying {', '.join(f'{system_id}.{e}' for e in entities)} from batch {from_batch}")
    return _execute(RUN_ALL_JOB, system_ids=[system_id],
                    tags={REPLAY_TAG: ",".join(f"{system_id}.{e}:{from_batch}" for e in entities)},
                    echo=echo, asset_selection=selection)
