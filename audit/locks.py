"""Per-system exclusion, as PostgreSQL advisory locks (they die with the process, so a killed run
never blocks the next one).

Two locks, because two kinds of holder exist: a whole job run from the CLI holds `run:<system>` on a
connection of its own for the job's length, and the landing step (from the CLI, the UI, a schedule)
holds `landing:<system>` while it picks and lands a batch. A second holder does not wait: it is told
which system is busy.

A third, `transform`, is held by the dbt step of every run, however it was started, for the whole dbt
build: one build covers every system's bronze and silver and the gold built across them, so two builds
must never overlap. It waits (a run's batches are landed and checked, and must still be built), up to
TRANSFORM_WAIT, then fails naming the lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import psycopg
from psycopg import sql

from warehouse.connection import advisory_key
from warehouse.session import connect

TRANSFORM_LOCK = "transform"
TRANSFORM_WAIT = "2h"  # PostgreSQL interval text: longer than any dbt build a home server runs


class SystemBusyError(RuntimeError):
    """Another run holds the lock of these systems (comma-separated in the message)."""


@contextlib.contextmanager
def _locks(conn: psycopg.Connection, purpose: str, system_ids: list[str]) -> Iterator[None]:
    held, busy = [], []
    for system_id in system_ids:
        key = advisory_key(f"{purpose}:{system_id}")
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


@contextlib.contextmanager
def run_locks(url: str, system_ids: list[str]) -> Iterator[None]:
    """Hold every system's run lock for a whole job, or raise SystemBusyError naming the busy ones."""
    with connect(url, autocommit=True) as conn, _locks(conn, "run", system_ids):
        yield


def landing_lock(conn: psycopg.Connection, system_id: str) -> contextlib.AbstractContextManager[None]:
    """Hold the system's landing lock on `conn` (an autocommit connection) while a batch is picked and landed."""
    return _locks(conn, "landing", [system_id])


class TransformBusyError(RuntimeError):
    """Another run's dbt build held the transform lock for longer than TRANSFORM_WAIT."""


@contextlib.contextmanager
def transform_lock(url: str, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the transform lock on a connection of its own for the block; if another run holds it, call `on_wait`
    and wait for it (at most TRANSFORM_WAIT, then TransformBusyError)."""
    key = advisory_key(TRANSFORM_LOCK)
    with connect(url, autocommit=True) as conn:
        if not conn.execute("select pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
            if on_wait is not None:
                on_wait()
            conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(TRANSFORM_WAIT)))
            try:
                conn.execute("select pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable as err:
                raise TransformBusyError(
                    f"another run's dbt build has held the transform lock for over {TRANSFORM_WAIT}; see its run in"
                    " the Dagster UI (or `select * from pg_stat_activity`), and run this one again when it has ended"
                ) from err
            conn.execute("reset lock_timeout")
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection has released it by closing
                conn.execute("select pg_advisory_unlock(%s)", (key,))
