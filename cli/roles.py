"""`dataplatform setup-roles`: create the warehouse's owner and analyst roles and say how to connect as each.

Embedded warehouse: the roles exist from the first start (passwords generated into the state folder);
this command (re)applies the grants and prints the URLs and password files. External warehouse
(DATAPLATFORM_DATABASE_URL given as a superuser, or a CREATEROLE role owning the database): it creates the
roles that are missing with generated passwords, written to owner-only files, never printed; an existing
role keeps its password unless `--new-password ROLE` asks for a new one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import psycopg

from warehouse.embedded import connection_params, redact_url
from warehouse.roles import (
    ANALYST_ROLE,
    OWNER_ROLE,
    PLATFORM_SCHEMAS,
    BootstrapReport,
    bootstrap_database,
    ensure_roles,
    new_password,
    require_admin,
)

Echo = Callable[[str], None]


def role_url(url: str, role: str, password: str | None) -> str:
    """`url`'s server and database, as `role` (password *** when None: for printing)."""
    params = connection_params(url)
    secret = "***" if password is None else quote(password, safe="")
    return (f"postgresql://{quote(role, safe='')}:{secret}@{params['host']}:{params['port']}/"
            f"{quote(str(params['dbname']), safe='')}")


def write_password(folder: Path, role: str, password: str) -> Path:
    """Keep a generated password in `folder/<role>.password`, readable by its owner only from the first byte."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{role}.password"
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(password + "\n")
    return path


def describe(role: str, *, owner: str, analyst: str) -> str:
    if role == owner:
        return f"owns {', '.join(PLATFORM_SCHEMAS)}; the platform (dlt, dbt, Great Expectations) connects as it"
    assert role == analyst
    return "reads gold only (tables created later included); can read nothing else and write nothing"


def setup_external(url: str, *, owner: str, analyst: str, renew: set[str], password_dir: Path,
                   echo: Echo) -> BootstrapReport:
    """Create the roles on an external warehouse and grant them their privileges (one transaction for the
    grants); generated passwords go to `password_dir`."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        require_admin(conn)  # before any password file is written
        existing = {row[0] for row in conn.execute(
            "select rolname from pg_roles where rolname = any(%s)", ([owner, analyst],))}
        generated = {role: new_password() for role in (owner, analyst) if role not in existing or role in renew}
        files = {role: write_password(password_dir, role, password) for role, password in generated.items()}
        report = ensure_roles(conn, generated, reset=frozenset(renew))
        bootstrap_database(conn, owner=owner, analyst=analyst, report=report)
    echo(f"roles of the warehouse {redact_url(url)}:")
    for role in (owner, analyst):
        kind = "owner" if role == owner else "analyst"
        echo(f"  {kind:<8} {role_url(url, role, None)}")
        echo(f"           {describe(role, owner=owner, analyst=analyst)}")
        if role in files:
            echo(f"           password: generated now, in {files[role]} (mode 0600; it is not shown)")
        else:
            echo("           password: unchanged (an existing password is never shown; `--new-password "
                 f"{role}` sets a new one)")
    echo(f"Now set DATAPLATFORM_DATABASE_URL to the owner's URL ({role_url(url, owner, None)}, its password "
         "in place of ***) for every other command; the platform then bootstraps nothing.")
    return report


def show_embedded(server_url_of: Callable[[str], str], password_file_of: Callable[[str], Path], *,
                  echo: Echo) -> None:
    """How to connect to the embedded warehouse as each role."""
    echo("roles of the embedded warehouse (passwords are never shown: read them from the files named):")
    for kind, role in (("owner", OWNER_ROLE), ("analyst", ANALYST_ROLE)):
        echo(f"  {kind:<8} {redact_url(server_url_of(role))}")
        echo(f"           {describe(role, owner=OWNER_ROLE, analyst=ANALYST_ROLE)}")
        echo(f"           password: in {password_file_of(role)} (mode 0600)")
    echo("The embedded server runs while a command uses it (`dataplatform dev` keeps it up); its port can change "
         "when it restarts, so take the URL from here each time.")
