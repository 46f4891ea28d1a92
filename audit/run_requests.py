"""Runs asked for from outside Dagster (a webhook call, the operator's API): `audit.run_request`, one row per
accepted request. The HTTP service records them; Dagster's `run_requests` sensor turns each into one run.

The table is the guard of both rules a webhook has: a delivery id seen before starts nothing new, and a system
called again before its minimum interval is refused. Both hold across restarts and across several service
processes, because they are decided in one transaction under one advisory lock. That lock also makes request
ids commit in their order, so the sensor's cursor (the last id it handed on) never passes over a request
that commits later.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import class_row

from warehouse.connection import advisory_key

TRIGGERS = ("webhook", "api")
REQUEST_LOCK = "run_request"


@dataclass(frozen=True)
class RunRequest:
    request_id: int
    system_id: str
    trigger: str
    delivery_id: str
    received_at: dt.datetime
    body_sha256: str | None
    body_bytes: int | None

    def public(self) -> dict[str, Any]:
        """What the HTTP service shows of it (the body's hash says which body came; no secret is in here)."""
        return {"request_id": self.request_id, "system_id": self.system_id, "trigger": self.trigger,
                "delivery_id": self.delivery_id, "received_at": self.received_at.isoformat(),
                "body_sha256": self.body_sha256, "body_bytes": self.body_bytes}


@dataclass(frozen=True)
class Recorded:
    request: RunRequest
    repeated: bool  # the delivery id was known: this is the first request's row, nothing new was recorded


class TooSoon(Exception):
    """The system was called again before its minimum interval; `retry_after` whole seconds remain."""

    def __init__(self, system_id: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"{system_id} was called less than its minimum interval ago: retry in {retry_after} s")


_COLUMNS = "request_id, system_id, trigger, delivery_id, received_at, body_sha256, body_bytes"


def record(conn: psycopg.Connection, *, system_id: str, trigger: str, delivery_id: str,
           min_interval_seconds: int = 0, body_sha256: str | None = None,
           body_bytes: int | None = None) -> Recorded:
    """Record a request, or find the earlier one with the same delivery id (then nothing is recorded and the
    interval is not checked: a re-sent delivery is answered, not refused). Raises TooSoon when the system's
    latest request of this trigger is less than `min_interval_seconds` old. Commits on `conn`."""
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown trigger {trigger!r}; known: {', '.join(TRIGGERS)}")
    with conn.transaction(), conn.cursor(row_factory=class_row(RunRequest)) as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (advisory_key(REQUEST_LOCK),))
        known = cur.execute(f"select {_COLUMNS} from audit.run_request where system_id = %s and delivery_id = %s",
                            (system_id, delivery_id)).fetchone()
        if known is not None:
            return Recorded(known, repeated=True)
        if min_interval_seconds > 0:
            row = conn.execute(
                "select extract(epoch from clock_timestamp() - max(received_at)) from audit.run_request"
                " where system_id = %s and trigger = %s", (system_id, trigger)).fetchone()
            elapsed = row[0] if row else None
            if elapsed is not None and float(elapsed) < min_interval_seconds:
                raise TooSoon(system_id, max(1, math.ceil(min_interval_seconds - float(elapsed))))
        created = cur.execute(
            f"insert into audit.run_request (system_id, trigger, delivery_id, body_sha256, body_bytes)"
            f" values (%s, %s, %s, %s, %s) returning {_COLUMNS}",
            (system_id, trigger, delivery_id, body_sha256, body_bytes)).fetchone()
        assert created is not None
        return Recorded(created, repeated=False)


def get(conn: psycopg.Connection, request_id: int) -> RunRequest | None:
    with conn.cursor(row_factory=class_row(RunRequest)) as cur:
        return cur.execute(f"select {_COLUMNS} from audit.run_request where request_id = %s",
                           (request_id,)).fetchone()


def after(conn: psycopg.Connection, request_id: int, *, limit: int = 100) -> list[RunRequest]:
    """The requests recorded after `request_id` (the sensor's cursor), oldest first."""
    with conn.cursor(row_factory=class_row(RunRequest)) as cur:
        return cur.execute(f"select {_COLUMNS} from audit.run_request where request_id > %s"
                           " order by request_id limit %s", (request_id, limit)).fetchall()
