"""Per-system exclusion, as PostgreSQL advisory locks (they die with the process, so a killed run
never blocks the next one).

Two locks, because two kinds of holder exist: a whole job run from the CLI holds `run:<system>` on a
connection of its own for the job's length, and the landing step (from the CLI, the UI, a schedule)
holds `landing:<system>` while it picks and lands a batch. A second holder does not wait: it is told
which system is busy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from warehouse.connection import advisory_key
from warehouse.session import connect


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
