"""`audit.run_failure`: a platform run that failed for a reason no event reports (see migration 0010). Written by
the CLI when its run ends and by the run-failure sensor, whichever comes first: one row per Dagster run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from secret_store.redact import redact


@dataclass(frozen=True)
class RunFailure:
    run_failure_id: int
    dagster_run_id: str
    job_name: str
    systems: list[str]
    steps: list[str]
    message: str
    recorded_at: dt.datetime


_COLUMNS = "run_failure_id, dagster_run_id, job_name, systems, steps, message, recorded_at"


def record_run_failure(conn: psycopg.Connection, *, dagster_run_id: str, job_name: str, systems: Sequence[str],
                       steps: Sequence[str], message: str) -> RunFailure:
    """The run's row: written now, or the one already there (the other path saw the run first)."""
    conn.execute(
        "insert into audit.run_failure (dagster_run_id, job_name, systems, steps, message)"
        " values (%s, %s, %s, %s, %s) on conflict (dagster_run_id) do nothing",
        (dagster_run_id, job_name, list(systems), list(steps), redact(message)[:8000]),
    )
    row = conn.execute(f"select {_COLUMNS} from audit.run_failure where dagster_run_id = %s",
                       (dagster_run_id,)).fetchone()
    return RunFailure(*row)


def recent_run_failures(conn: psycopg.Connection, *, limit: int = 10) -> list[dict[str, Any]]:
    """The newest run failures, newest first (for `dataplatform status`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"select {_COLUMNS} from audit.run_failure order by run_failure_id desc limit %s",
                           (limit,)).fetchall()
