"""Least privilege in the warehouse: the platform's own owner role and the read-only analyst role.

The owner (LOGIN, no superuser, no CREATEROLE/CREATEDB) owns the platform's schemas and everything in
them; the platform, dlt, dbt and Great Expectations all connect as it. The analyst (LOGIN) may connect
and read `gold`, tables created there later included (default privileges), and nothing else.

A superuser (or a role with CREATEROLE that owns the database) only bootstraps: it creates the roles,
grants the database privileges, creates the schemas owned by the owner, and hands over whatever an
earlier superuser-run platform created there. Everything here is idempotent: run it at every start.
Passwords reach the server as SCRAM verifiers computed here, so no plaintext password is ever in a
statement (the server log, pg_stat_activity).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

OWNER_ROLE = "dataplatform_owner"
ANALYST_ROLE = "analyst"
PLATFORM_SCHEMAS = ("landing", "bronze", "silver", "gold", "audit")
ANALYST_SCHEMA = "gold"
_SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)
# Relation kinds that take ALTER ... OWNER themselves (indexes and a table's own sequences follow their table).
_OWNED_KINDS = {"r": "table", "p": "table", "f": "foreign table", "v": "view", "m": "materialized view",
                "S": "sequence", "c": "type"}


class RoleSetupError(RuntimeError):
    """The connecting role cannot set up the roles; the message says which role and what to do."""


@dataclass
class BootstrapReport:
    """What a bootstrap changed: roles created, passwords set, objects handed over to the owner."""

    created: list[str] = field(default_factory=list)
    passwords_set: list[str] = field(default_factory=list)
    reassigned: list[str] = field(default_factory=list)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def scram_verifier(password: str, *, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5803 form, as libpq builds it)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt).decode()}"
            f"${b64(hashlib.sha256(client_key).digest()).decode()}:{b64(server_key).decode()}")


def current_role_powers(conn: psycopg.Connection) -> tuple[str, bool, bool]:
    """(role name, is superuser, may create roles) of the session's login role."""
    row = conn.execute("select rolname, rolsuper, rolcreaterole from pg_roles where rolname = session_user").fetchone()
    assert row is not None
    return str(row[0]), bool(row[1]), bool(row[2])


def require_admin(conn: psycopg.Connection) -> None:
    """Raise RoleSetupError unless the session may create roles."""
    name, superuser, createrole = current_role_powers(conn)
    if not (superuser or createrole):
        raise RoleSetupError(
            f"the role {name!r} may not create roles (it is neither a superuser nor has CREATEROLE): run "
            f"`dataplatform setup-roles` with DATAPLATFORM_DATABASE_URL set to a superuser's URL")


def ensure_roles(conn: psycopg.Connection, passwords: dict[str, str], *, reset: frozenset[str] = frozenset(),
                 report: BootstrapReport | None = None) -> BootstrapReport:
    """Create each role of `passwords` (LOGIN, nothing more) that does not exist, with its password; an
    existing one keeps its password unless it is in `reset`. Roles are cluster-wide, so this needs no database."""
    report = report or BootstrapReport()
    require_admin(conn)
    for role, password in passwords.items():
        row = conn.execute("select rolsuper from pg_roles where rolname = %s", (role,)).fetchone()
        verifier = sql.Literal(scram_verifier(password))
        if row is None:
            try:
                conn.execute(sql.SQL("create role {} login nosuperuser nocreatedb nocreaterole noreplication"
                                     " password {}").format(sql.Identifier(role), verifier))
            except psycopg.errors.DuplicateObject:  # another process created it a moment ago: keep its password
                continue
            report.created.append(role)
            report.passwords_set.append(role)
            continue
        if row[0]:
            raise RoleSetupError(f"the role {role!r} exists and is a superuser: the platform's roles must not be; "
                                 f"`alter role {role} nosuperuser` (as a superuser), then run this again")
        if role in reset:
            conn.execute(sql.SQL("alter role {} login password {}").format(sql.Identifier(role), verifier))
            report.passwords_set.append(role)
    return report


def bootstrap_database(conn: psycopg.Connection, *, owner: str = OWNER_ROLE, analyst: str = ANALYST_ROLE,
                       report: BootstrapReport | None = None) -> BootstrapReport:
    """Grant the roles what they need in the connected database, and only that (see the module doc).

    `conn` connects as a superuser, or as a CREATEROLE role that owns the database. Runs in one
    transaction: a failure changes nothing.
    """
    report = report or BootstrapReport()
    name, superuser, _ = current_role_powers(conn)
    database = conn.info.dbname
    try:
        with conn.transaction():
            _grant(conn, name=name, superuser=superuser, database=database, owner=owner, analyst=analyst,
                   report=report)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RoleSetupError(
            f"the role {name!r} may not set up the platform's roles in the database {database!r} ({exc}): run "
            f"`dataplatform setup-roles` as a superuser (or as a CREATEROLE role that owns the database and its "
            f"platform schemas)") from None
    return report


def _grant(conn: psycopg.Connection, *, name: str, superuser: bool, database: str, owner: str, analyst: str,
           report: BootstrapReport) -> None:
    """The statements of bootstrap_database, in its transaction."""
    ident = sql.Identifier
    o, a, db = ident(owner), ident(analyst), ident(database)
    if not superuser:
        # Changing an object's owner to `owner` needs membership of it (a superuser needs nothing).
        conn.execute(sql.SQL("grant {} to {}").format(o, ident(name)))
    try:
        # PUBLIC keeps nothing on the platform's database: connecting, temp tables and schemas are granted.
        conn.execute(sql.SQL("revoke all on database {} from public").format(db))
        conn.execute(sql.SQL("grant connect, temporary, create on database {} to {}").format(db, o))
        conn.execute(sql.SQL("grant connect on database {} to {}").format(db, a))
    except psycopg.errors.InsufficientPrivilege:
        raise RoleSetupError(
            f"the role {name!r} may not grant privileges on the database {database!r}: run "
            f"`dataplatform setup-roles` as a superuser or as the database's owner") from None
    conn.execute("revoke create on schema public from public")  # PostgreSQL < 15 lets everyone create there
    for schema in PLATFORM_SCHEMAS:
        conn.execute(sql.SQL("create schema if not exists {} authorization {}").format(ident(schema), o))
        conn.execute(sql.SQL("alter schema {} owner to {}").format(ident(schema), o))
    report.reassigned += _hand_over(conn, owner)
    for schema in PLATFORM_SCHEMAS:
        if schema != ANALYST_SCHEMA:  # an analyst role that existed before may have been given more
            conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(ident(schema), a))
            conn.execute(sql.SQL("revoke all on schema {} from {}").format(ident(schema), a))
    gold = ident(ANALYST_SCHEMA)
    conn.execute(sql.SQL("revoke all on all tables in schema {} from {}").format(gold, a))
    conn.execute(sql.SQL("revoke create on schema {} from {}").format(gold, a))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(gold, a))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(gold, a))
    conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select on tables to {}")
                 .format(o, gold, a))


def _hand_over(conn: psycopg.Connection, owner: str) -> list[str]:
    """Make `owner` the owner of every relation, type and routine in the platform's schemas (a warehouse
    created before the owner role existed has them owned by the superuser). REASSIGN OWNED cannot do it:
    the superuser owns the system catalogs too."""
    params = {"schemas": list(PLATFORM_SCHEMAS), "kinds": list(_OWNED_KINDS), "owner": owner}
    objects = conn.execute(
        """
        select c.relkind::text, n.nspname, c.relname, null
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%(schemas)s) and c.relkind::text = any(%(kinds)s)
          and c.relowner <> (select oid from pg_roles where rolname = %(owner)s)
          -- an identity or serial column's sequence follows its table
          and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid
                          and d.deptype in ('a', 'i') and c.relkind = 'S')
        union all
        select 'type', n.nspname, t.typname, null
        from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = any(%(schemas)s) and t.typtype in ('e', 'd', 'r')
          and t.typowner <> (select oid from pg_roles where rolname = %(owner)s)
        union all
        select 'routine', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%(schemas)s) and p.proowner <> (select oid from pg_roles where rolname = %(owner)s)
        """,
        params,
    ).fetchall()
    moved = []
    for kind, schema, name, arguments in objects:
        target = sql.Identifier(schema, name)
        if arguments is not None:  # a routine is named by its argument types
            target = sql.SQL("{}({})").format(target, sql.SQL(arguments))
        conn.execute(sql.SQL("alter {} {} owner to {}").format(
            sql.SQL(_OWNED_KINDS.get(kind, kind)), target, sql.Identifier(owner)))
        moved.append(f"{schema}.{name}")
    return moved
