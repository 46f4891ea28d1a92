"""How every process reaches the warehouse: the URL the `dataplatform` command exported, the same
connection handed to dlt and dbt (profiles.yml reads DATAPLATFORM_PG_*), and advisory-lock keys.

Every connection the platform opens uses the owner role (warehouse/roles.py): the embedded server's
superuser URL is exchanged for the owner's here; an external URL is used as given (the operator gives the
owner's, see `dataplatform setup-roles`).
The session settings every client gets are in warehouse.session."""

from __future__ import annotations

import os
import zlib

from secret_store.redact import remember_secret
from warehouse.embedded import DATABASE_URL_ENV, EmbeddedPostgres, connection_params, state_dir
from warehouse.session import pin_environment


class NoWarehouseError(RuntimeError):
    pass


def warehouse_url() -> str:
    """The URL the `dataplatform` command exported (or the operator set) for this process."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise NoWarehouseError(
            f"{DATABASE_URL_ENV} is not set: start Dagster through `dataplatform dev` (which starts the embedded "
            "PostgreSQL and sets it), or set it to your PostgreSQL URL"
        )
    pin_environment()  # a process not started by the `dataplatform` command (a Dagster code server) too
    return url


def embedded_server() -> EmbeddedPostgres:
    """The embedded server of this process's state folder (whether or not it was ever started)."""
    return EmbeddedPostgres(state_dir() / "postgres")


def platform_url(url: str) -> str:
    """The URL the platform connects with: for the embedded server's superuser URL, the owner role's URL
    on the same database; any other URL as given."""
    return embedded_server().owner_url_for(url) or url


def export_warehouse_env(url: str) -> None:
    """Make the warehouse reachable by everything this process starts: dlt, dbt (profiles.yml) and Dagster,
    all as the owner role when `url` is the embedded server's superuser URL (see platform_url), and all with
    the platform's session settings."""
    remember_secret(str(connection_params(url)["password"]))  # the superuser's, when given the embedded one's URL
    url = platform_url(url)
    params = connection_params(url)
    remember_secret(str(params["password"]))  # masked in every message, even after the environment changes
    pin_environment()
    os.environ[DATABASE_URL_ENV] = url
    os.environ["DATAPLATFORM_PG_HOST"] = str(params["host"])
    os.environ["DATAPLATFORM_PG_PORT"] = str(params["port"])
    os.environ["DATAPLATFORM_PG_USER"] = str(params["user"])
    os.environ["DATAPLATFORM_PG_PASSWORD"] = str(params["password"])
    os.environ["DATAPLATFORM_PG_DBNAME"] = str(params["dbname"])


def export_configured_warehouse() -> None:
    """In a process the `dataplatform` command did not start (a run's own container under Dagster's run
    launcher, a Celery worker), export the warehouse the operator configured (DATAPLATFORM_DATABASE_URL), as
    the command does for its own: dbt's profile reads DATAPLATFORM_PG_*, and nothing else would set them.
    A process that already has them (started by the command) is left as it is; no URL, nothing to do."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url and "DATAPLATFORM_PG_HOST" not in os.environ:
        export_warehouse_env(url)


def advisory_key(name: str) -> int:
    """A stable advisory-lock key for a name (a system id)."""
    return zlib.crc32(name.encode())
