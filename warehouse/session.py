"""The session settings every warehouse connection of the platform runs with, so that no environment
(PGTZ, PGDATESTYLE, PGOPTIONS, a role's or database's defaults, postgresql.conf) can change what is
stored or compared.

Why each one:
- TimeZone=UTC: a timestamp string without an offset (`2026-01-31 10:00`) is read in the session's
  zone, by the quality gate and by bronze's cast alike; UTC everywhere means the same instant whichever
  process (CLI, Dagster daemon, UI) reads it. Printed timestamps are UTC too.
- DateStyle='ISO, YMD': dates and timestamps print as ISO text (what the platform's own SQL reads
  back), and an input whose day/month order is ambiguous (`01/02/2026`) is refused, so the gate
  reports it instead of a session's MDY or DMY choosing a date.
- IntervalStyle=postgres: intervals print the same in every session (the platform stores none today;
  pinned so a future one cannot depend on it).
- extra_float_digits=1: a double precision prints as the shortest text that reads back to exactly the
  same value (PostgreSQL 12+; 0 or less would round it), which is also PostgreSQL's default, so what an
  analyst sees in psql is what the platform compared.

How they reach each client: libpq-based clients (dlt's psycopg2, dbt-postgres's psycopg2, Great
Expectations' SQLAlchemy on psycopg) read PGOPTIONS from the environment: `pin_environment` puts these
settings last in it (the last `-c` of a name wins) and drops PGTZ and PGDATESTYLE, which libpq sends
after PGOPTIONS and which would win over it. The platform's own psycopg connections (`connect`) set
them explicitly after connecting, whatever the environment holds.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg

SESSION_SETTINGS: dict[str, str] = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
}
# libpq turns these into session settings sent after PGOPTIONS, so they would override it.
OVERRIDING_ENV = ("PGTZ", "PGDATESTYLE")


def options() -> str:
    """The settings as libpq's `options` (`-c name=value`, spaces escaped with a backslash)."""
    return " ".join(f"-c {name}={value.replace(' ', chr(92) + ' ')}" for name, value in SESSION_SETTINGS.items())


def pin_environment() -> None:
    """Make every libpq client this process starts (dlt, dbt, GX) open its sessions with these settings:
    PGOPTIONS keeps what the operator put in it, with ours last; PGTZ and PGDATESTYLE are removed."""
    ours = options()
    current = os.environ.get("PGOPTIONS", "")
    if not current.endswith(ours):
        os.environ["PGOPTIONS"] = f"{current} {ours}".strip()
    for name in OVERRIDING_ENV:
        os.environ.pop(name, None)


def apply(conn: psycopg.Connection) -> None:
    """Set the settings on an open connection, for the session (outside any transaction, so they last)."""
    names = list(SESSION_SETTINGS)
    conn.execute("select " + ", ".join("set_config(%s, %s, false)" for _ in names),
                 [v for name in names for v in (name, SESSION_SETTINGS[name])])


def connect(url: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """A psycopg connection to the warehouse with the platform's session settings."""
    conn = psycopg.connect(url, autocommit=True, **kwargs)
    try:
        apply(conn)
        conn.autocommit = autocommit
    except BaseException:
        conn.close()
        raise
    return conn
