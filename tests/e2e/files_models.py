"""Entity models of FIL01, a test-only `files` system (tests/e2e/files_metadata): customers from CSV drops,
whose values are all text, and orders from gzipped JSON lines drops (test_files_pipeline.py)."""

from __future__ import annotations

import decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Customer(EntityModel):
    """A customer as the CSV file gives it: every field a string."""

    customer_id: Key[str] = Field(description="Customer number, as written (leading zeros kept).")
    name: str = Field(description="Name.")
    city: str = Field(description="City; may be empty.")


class Order(EntityModel):
    """An order."""

    order_id: Key[int] = Field(description="Order number.")
    customer_id: str = Field(description="The customer who ordered.")
    amount: decimal.Decimal = Field(description="Amount.")
