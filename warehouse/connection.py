"""How every process reaches the warehouse: the URL the `dataplatform` command exported, the same
connection handed to dlt and dbt (profiles.yml reads DATAPLATFORM_PG_*), the session settings every
client gets (warehouse.session), and advisory-lock keys."""

from __future__ import annotations

import os
import zlib

from warehouse.embedded import DATABASE_URL_ENV, connection_params
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


def export_warehouse_env(url: str) -> None:
    """Make the warehouse reachable by everything this process starts: dlt, dbt (profiles.yml) and Dagster,
    all with the platform's session settings."""
    params = connection_params(url)
    pin_environment()
    os.environ[DATABASE_URL_ENV] = url
    os.environ["DATAPLATFORM_PG_HOST"] = str(params["host"])
    os.environ["DATAPLATFORM_PG_PORT"] = str(params["port"])
    os.environ["DATAPLATFORM_PG_USER"] = str(params["user"])
    os.environ["DATAPLATFORM_PG_PASSWORD"] = str(params["password"])
    os.environ["DATAPLATFORM_PG_DBNAME"] = str(params["dbname"])


def advisory_key(name: str) -> int:
    """A stable advisory-lock key for a name (a system id)."""
    return zlib.crc32(name.encode())
