"""An environment failure (issue 14, item 8): Dagster's sqlite storage fails as a full disk makes it fail.
The CLI ends with one message naming what failed and where, exit code 5, no traceback; the audit rows
the run had written stay correct.

Running as root, a read-only folder does not stop writes, and a tiny file system cannot be mounted
here; so the storage is made to fail in-process, the way SQLAlchemy reports sqlite's `disk I/O error`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy.exc
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from cli.main import EXIT_ENVIRONMENT, main
from ingestion.test_system.generator import simulate, write_day

pytestmark = pytest.mark.e2e

DISK_ERROR = sqlalchemy.exc.OperationalError("INSERT INTO event_logs ...", {},
                                             sqlite3.OperationalError("disk I/O error"))


def _fail_when(monkeypatch: pytest.MonkeyPatch, event_types: set[DagsterEventType]) -> None:
    original = SqliteEventLogStorage.store_event

    def store_event(self: SqliteEventLogStorage, event: Any) -> None:
        if event.dagster_event is not None and event.dagster_event.event_type in event_types:
            raise DISK_ERROR
        original(self, event)

    monkeypatch.setattr(SqliteEventLogStorage, "store_event", store_event)


def test_dagster_storage_failing_at_the_end_of_a_run_ends_the_cli_with_one_message(
    fresh_warehouse: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from warehouse.embedded import state_dir

    write_day(next(simulate(days=1, seed=5)), state_dir() / "sources" / "TST01")
    _fail_when(monkeypatch, {DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE})

    code = main(["run", "--system", "TST01"])

    out, err = capsys.readouterr()
    home = os.environ["DAGSTER_HOME"]
    assert code == EXIT_ENVIRONMENT == 5, out + err
    assert f"error: environment: Dagster's run storage (sqlite files under {home}) failed: disk I/O error" in err
    assert "MiB free there" in err and "then run again" in err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0]  # one message, the last word
    with psycopg.connect(fresh_warehouse) as conn:  # the batch was closed by its steps before the storage failed
        runs = conn.execute("select status from audit.system_run").fetchall()
    assert runs == [("succeeded",)]


def test_dagster_storage_failing_before_a_run_starts_writes_nothing(
    fresh_warehouse: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

    def add_run(self: SqlRunStorage, run: Any) -> Any:
        raise DISK_ERROR

    monkeypatch.setattr(SqlRunStorage, "add_run", add_run)
    code = main(["run", "--system", "TST01"])

    out, err = capsys.readouterr()
    assert code == EXIT_ENVIRONMENT, out + err
    assert "error: environment: Dagster's run storage" in err and "Traceback" not in out + err
    with psycopg.connect(fresh_warehouse) as conn:
        assert conn.execute("select count(*) from audit.system_run").fetchone() == (0,)


def test_a_full_disk_names_the_file() -> None:
    from cli.environment import environment_failure

    error = OSError(28, "No space left on device", "/srv/state/dlt/landing_tst01/load/x.csv")
    wrapped = RuntimeError("step failed")
    wrapped.__cause__ = error
    message = environment_failure(wrapped)
    assert message is not None
    assert message.startswith("the disk is full writing /srv/state/dlt/landing_tst01/load/x.csv (")
    assert "(No space left on device)" in message
    assert environment_failure(ValueError("a bug")) is None
