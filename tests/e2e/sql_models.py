"""Entity models of SQT01, the test-only sql_database system (test_sql_database_pipeline.py)."""

from __future__ import annotations

import datetime as dt
import decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key, Scd1


class Vehicle(EntityModel):
    """A vehicle of the fleet database."""

    id: Key[int] = Field(description="Number of the vehicle.")
    plate: str = Field(description="Its licence plate.")
    price: decimal.Decimal = Field(description="numeric(10,2): lands with its scale, 1.50.")
    photo: str | None = Field(default=None, description="bytea, as base64.")
    specs: dict = Field(description="jsonb, kept as JSON.")
    active: bool = Field(description="A boolean.")
    registered: dt.date = Field(description="A date.")
    updated_at: dt.datetime = Field(description="timestamptz: the endpoint's cursor column.")


class Event(EntityModel):
    """An event of a vehicle; events are only added."""

    id: Key[int] = Field(description="An identity column: the endpoint's cursor column.")
    vehicle_id: int = Field(description="Its vehicle.")
    kind: str = Field(description="What happened.")


class Owner(EntityModel):
    """An active owner."""

    id: Key[int] = Field(description="Number of the owner.")
    name: str = Field(description="Their name.")
    since: dt.datetime = Field(description="timestamp without time zone: lands without an offset.")


class CdcItem(EntityModel):
    """An item of the stock database, read by change data capture (SQC01)."""

    id: Key[int] = Field(description="Number of the item.")
    name: str = Field(description="What it is.")
    price: decimal.Decimal = Field(description="numeric(10,2), exact.")
    changed_at: dt.datetime = Field(description="timestamptz.")
    lsn: Scd1[str] = Field(alias="cdc_lsn", description="Commit LSN of the change (the snapshot's consistent point for "
                                                     "snapshot rows); type 1, so it opens no version of its own.")
