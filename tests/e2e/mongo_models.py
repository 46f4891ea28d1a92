"""Entity model of MGO01, the test-only mongodb system of test_mongodb_pipeline.py."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Product(EntityModel):
    """A product document (relaxed Extended JSON: a date lands as {"$date": ...}; bronze reads it as a timestamp)."""

    sku: Key[str] = Field(description="The product's stock-keeping unit.")
    name: str = Field(description="Its name; changed on day 2 for one product.")
    stock: int = Field(description="Units in stock.")
    updated_at: dt.datetime = Field(description="When it last changed ({\"$date\": ...}): the cursor field.")
    deleted: bool | None = Field(default=None, description="Soft-delete flag: a document saved with true is a delete.")
