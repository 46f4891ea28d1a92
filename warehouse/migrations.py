"""Versioned migrations of the platform's own schemas (audit and the layer schemas).

Each `migrations/NNNN_name.sql` runs once, in order, in its own transaction, and is recorded in
`audit.schema_migration`; an advisory lock keeps two processes from migrating at once.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_362_001  # any constant; identifies "platform migrations" among advisory locks


def pending_migrations(applied: set[str]) -> list[Path]:
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if p.stem not in applied]


def migrate(url: str) -> list[str]:
    """Apply every migration not applied yet; return the names applied now."""
    done: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute("create schema if not exists audit")
            conn.execute(
                "create table if not exists audit.schema_migration"
                " (name text primary key, applied_at timestamptz not null default now())"
            )
            applied = {row[0] for row in conn.execute("select name from audit.schema_migration")}
            for path in pending_migrations(applied):
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("insert into audit.schema_migration (name) values (%s)", (path.stem,))
                done.append(path.stem)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return done
