"""Entity models of MDB01, the example MongoDB system in metadata/examples/mongodb (not part of the demo).

Documents land as relaxed Extended JSON: a value JSON has no type for is a tagged object (`{"$date": ...}`,
`{"$oid": ...}`, `{"$numberDecimal": ...}`). Declared with a scalar type, such a value is read as that type in
bronze (a date as a timestamp, a Decimal128 as an exact numeric, an ObjectId as text; metadata.value_types);
declared as `dict`, it stays the tagged object (a jsonb column).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Product(EntityModel):
    """A product of the catalogue."""

    sku: Key[str] = Field(description="The product's stock-keeping unit.")
    name: str = Field(description="Its name.")
    stock: int = Field(description="Units in stock.")
    price: Decimal = Field(description='Its price, a Decimal128 ({"$numberDecimal": "1.50"} lands, 1.50 in bronze).')
    updated_at: dt.datetime = Field(description='When it last changed, a date ({"$date": "2026-01-02T00:00:00Z"}'
                                    " lands, a timestamp in bronze); the endpoint's cursor field.")


class Event(EntityModel):
    """An event of the catalogue (read whole every run)."""

    event_no: Key[int] = Field(description="Number of the event.")
    kind: str = Field(description="What happened.")
