"""Entity models of the example `files` system SHP01 (metadata/examples/files): customers from CSV drops,
whose values are all text, and orders from JSON lines drops."""

from __future__ import annotations

import decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Customer(EntityModel):
    """A customer as the shop's CSV export gives it: every field text, as written."""

    customer_id: Key[str] = Field(description="Customer number, as written (leading zeros kept).")
    name: str = Field(description="Name of the customer.")
    city: str = Field(description="City; empty when the shop does not know it.")


class Order(EntityModel):
    """An order from the shop's JSON lines export."""

    order_id: Key[int] = Field(description="Order number.")
    customer_id: str = Field(description="The customer who ordered (customer_id of the customer).")
    amount: decimal.Decimal = Field(description="Amount of the order, in euros.")
