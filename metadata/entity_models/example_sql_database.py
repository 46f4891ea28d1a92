"""Entity models of SQL01, the example sql_database system in metadata/examples/sql_database (not part of the demo)."""

from __future__ import annotations

import datetime as dt
import decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key, Scd1


class Order(EntityModel):
    """An order of the example shop database."""

    id: Key[int] = Field(description="Number of the order.")
    customer_id: int = Field(description="Who placed it (customers.id).")
    amount: decimal.Decimal = Field(description="What it costs, exactly as the database holds it (numeric(12,2)).")
    placed_at: dt.datetime = Field(description="When it was placed (timestamptz, landed as UTC).")
    receipt: str | None = Field(default=None, description="The receipt's bytes (bytea), as base64.")
    updated_at: dt.datetime = Field(description="When the database last changed it: the endpoint's cursor column.")


class OrderLine(EntityModel):
    """A line of an order; its increasing id is the endpoint's cursor column."""

    id: Key[int] = Field(description="Number of the line (an identity column).")
    order_id: int = Field(description="Its order (orders.id).")
    sku: str = Field(description="What was ordered.")
    quantity: int = Field(description="How many.")


class Customer(EntityModel):
    """A customer of the example shop database."""

    id: Key[int] = Field(description="Number of the customer.")
    name: str = Field(description="Their name.")
    email: str | None = Field(default=None, description="Their e-mail address.")
    address: dict | None = Field(default=None, description="Their address, a jsonb column kept as JSON.")


class StockItem(EntityModel):
    """A stock item of the example stock database (SQL02), read by change data capture."""

    sku: Key[str] = Field(description="The item's stock-keeping unit.")
    name: str = Field(description="What it is.")
    quantity: int = Field(description="How many are in stock.")
    price: decimal.Decimal = Field(description="Its price, exactly (numeric(10,2)).")
    updated_at: dt.datetime = Field(description="When the row last changed (timestamptz, landed as UTC).")
    cdc_lsn: Scd1[str] = Field(description="Commit LSN of the change the version comes from (the snapshot's "
                                           "consistent point for snapshot rows); type 1: it opens no version.")
