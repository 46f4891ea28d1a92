"""What followed an event: `audit.action_run` (one row per event and action: the guard that makes an action
run once per event) and `audit.notification` (one row per event or run failure, subject and channel: the guard
that makes a failure notify once, however often the work that reports it is retried or re-evaluated)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from secret_store.redact import redact, redact_optional


def claim_action(conn: psycopg.Connection, *, event_id: int, action: str, action_type: str,
                 dagster_run_id: str) -> int | None:
    """The action run's id if this caller may run `action` for the event now; None when it already succeeded
    (or is running in this run). A failed one is run again (the operator re-executes its run once the cause is
    fixed: the same row, so still one row per event and action), and a row left 'running' by a run that is gone
    (a crash) is taken over: the run queue runs one platform run at a time, so the other run is not alive."""
    with conn.transaction():
        row = conn.execute(
            "insert into audit.action_run (event_id, action, action_type, status, dagster_run_id)"
            " values (%s, %s, %s, 'running', %s) on conflict (event_id, action) do nothing returning action_run_id",
            (event_id, action, action_type, dagster_run_id),
        ).fetchone()
        if row:
            return int(row[0])
        row = conn.execute(
            "update audit.action_run set status = 'running', dagster_run_id = %s, started_at = clock_timestamp(),"
            " ended_at = null, message = null where event_id = %s and action = %s"
            " and (status = 'failed' or (status = 'running' and dagster_run_id <> %s))"
            " returning action_run_id",
            (dagster_run_id, event_id, action, dagster_run_id),
        ).fetchone()
        return int(row[0]) if row else None


def finish_action(conn: psycopg.Connection, action_run_id: int, status: str, *, message: str | None = None) -> None:
    conn.execute(
        "update audit.action_run set status = %s, ended_at = clock_timestamp(), message = %s"
        " where action_run_id = %s",
        (status, redact_optional(message and message[:4000]), action_run_id),
    )


@dataclass(frozen=True)
class NotificationOf:
    """What a notification is about: an event (`audit.event`) or a run failure (`audit.run_failure`)."""

    event_id: int | None = None
    run_failure_id: int | None = None

    def __post_init__(self) -> None:
        if (self.event_id is None) == (self.run_failure_id is None):
            raise ValueError("a notification is about one event or one run failure")

    def column(self) -> tuple[sql.Identifier, int]:
        if self.event_id is not None:
            return sql.Identifier("event_id"), self.event_id
        assert self.run_failure_id is not None
        return sql.Identifier("run_failure_id"), self.run_failure_id


def claim_notification(conn: psycopg.Connection, *, of: NotificationOf, subject: str, channel: str, title: str,
                       message: str) -> bool:
    """Whether this caller should send the notification: no row yet, or an earlier attempt that failed to
    send. A notification that was sent (or is being sent) is never sent again."""
    column, key = of.column()
    row = conn.execute(sql.SQL(
        "insert into audit.notification ({column}, subject, channel, status, title, message)"
        " values (%s, %s, %s, 'sending', %s, %s)"
        " on conflict ({column}, subject, channel) do update set status = 'sending', title = excluded.title,"
        "  message = excluded.message where audit.notification.status = 'failed'"
        " returning notification_id").format(column=column),
        (key, subject, channel, redact(title), redact(message)),
    ).fetchone()
    return row is not None


def finish_notification(conn: psycopg.Connection, *, of: NotificationOf, subject: str, channel: str,
                        error: str | None) -> None:
    """Record the outcome: 'sent', or 'failed' with why (a later attempt may then send it)."""
    column, key = of.column()
    conn.execute(sql.SQL(
        "update audit.notification set status = %s, sent_at = case when %s then clock_timestamp() end,"
        " message = case when %s then message else message || E'\\n\\nnot sent: ' || %s end"
        " where {column} = %s and subject = %s and channel = %s").format(column=column),
        ("sent" if error is None else "failed", error is None, error is None, redact(error or ""),
         key, subject, channel),
    )
