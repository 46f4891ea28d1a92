"""How every process reaches the warehouse: the URL the `dataplatform` command exported, the same
connection handed to dlt and dbt (profiles.yml reads DATAPLATFORM_PG_*), and advisory-lock keys."""

from __future__ import annotations

import os
import zlib

from secret_store.redact import remember_secret
from warehouse.embedded import DATABASE_URL_ENV, connection_params


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
    return url


def export_warehouse_env(url: str) -> None:
    """Make the warehouse reachable by everything this process starts: dlt, dbt (profiles.yml) and Dagster."""
    params = connection_params(url)
    remember_secret(str(params["password"]))  # masked in every message, even after the environment changes
    os.environ[DATABASE_URL_ENV] = url
    os.environ["DATAPLATFORM_PG_HOST"] = str(params["host"])
    os.environ["DATAPLATFORM_PG_PORT"] = str(params["port"])
    os.environ["DATAPLATFORM_PG_USER"] = str(params["user"])
    os.environ["DATAPLATFORM_PG_PASSWORD"] = str(params["password"])
    os.environ["DATAPLATFORM_PG_DBNAME"] = str(params["dbname"])


def advisory_key(name: str) -> int:
    """A stable advisory-lock key for a name (a system id)."""
    return zlib.crc32(name.encode())
