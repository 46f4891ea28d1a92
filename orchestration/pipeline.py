"""Run the platform's jobs in this process, on the Dagster instance the UI also reads.

Used by the CLI and the tests: the job runs in-process (no per-step process start-up), and its
runs appear in the Dagster UI because both use DAGSTER_HOME under the platform's state folder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import psycopg

from orchestration import audit
from orchestration.runtime import FORCE_TAG, warehouse_url


@dataclass(frozen=True)
class RunOutcome:
    success: bool
    dagster_run_id: str
    system_runs: list[audit.SystemRun]
    failed_steps: list[str]


def run_job(*, system_id: str | None = None, force: bool = False, echo: Callable[[str], None] = print) -> RunOutcome:
    """Run the job of one system (or of all) to the end; never raises for a failed step."""
    from orchestration.definitions import RUN_ALL_JOB, defs, system_job_name

    job_name = system_job_name(system_id) if system_id else RUN_ALL_JOB
    job = defs.resolve_job_def(job_name)
    echo(f"running job {job_name}{' (forced)' if force else ''} ...")
    started = dt.datetime.now()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        tags={FORCE_TAG: "true"} if force else {},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    failed = [e.step_key for e in result.all_events if e.is_step_failure and e.step_key]
    for event in result.all_events:
        if event.is_step_success or event.is_step_failure:
            echo(f"  step {event.step_key}: {'ok' if event.is_step_success else 'FAILED'}")
    with psycopg.connect(warehouse_url(), autocommit=True) as conn:
        for run in audit.unfinished_runs(conn, result.run_id):
            # A step that failed or was skipped before dbt leaves its batch open: close it honestly.
            audit.finish_system_run(conn, run, "succeeded" if result.success else "failed",
                                    message=None if result.success else f"failed steps: {', '.join(failed) or 'none'}")
        runs = audit.system_runs_of(conn, result.run_id)
    echo(f"job {job_name} {'succeeded' if result.success else 'FAILED'} in {(dt.datetime.now() - started).total_seconds():.1f}s"
         f" (Dagster run {result.run_id})")
    return RunOutcome(result.success, result.run_id, runs, failed)
