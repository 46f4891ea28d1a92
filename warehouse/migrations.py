"""Versioned migrations of the platform's own schemas (audit and the layer schemas).

Each `migrations/NNNN_name.sql` runs once, in order, in its own transaction, and is recorded in
`audit.schema_migration`; an advisory lock keeps two processes from migrating at once.

They run as the owner role, so everything they create is the owner's. Given the embedded server's
superuser URL, the superuser first bootstraps the database (warehouse/roles.py: grants, schemas owned
by the owner, objects of an older warehouse handed over); given any other URL, nothing is bootstrapped.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from warehouse.connection import platform_url
from warehouse.embedded import redact_url
from warehouse.roles import bootstrap_database

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_362_001  # any constant; identifies "platform migrations" among advisory locks


class MigrationError(RuntimeError):
    """A migration could not run; the message names it and says what to do."""


def pending_migrations(applied: set[str]) -> list[Path]:
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if p.stem not in applied]


def migrate(url: str) -> list[str]:
    """Apply every migration not applied yet, as the owner role; return the names applied now."""
    owner_url = platform_url(url)
    if owner_url != url:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                bootstrap_database(admin)
            finally:
                admin.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    try:
        return _apply(owner_url)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise MigrationError(
            f"migrating the warehouse as {redact_url(owner_url)}: {exc}. The platform's schemas must be owned by "
            "the role it connects as: run `dataplatform setup-roles` with DATAPLATFORM_DATABASE_URL set to a "
            "superuser's URL, then set it to the owner's URL that command prints") from None


def _apply(url: str) -> list[str]:
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
