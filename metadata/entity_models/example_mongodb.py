"""Entity models of MDB01, the example MongoDB system in metadata/examples/mongodb (not part of the demo).

Documents land as relaxed Extended JSON: a value JSON has no type for is a tagged object (`{"$date": ...}`,
`{"$oid": ...}`, `{"$numberDecimal": ...}`), modelled here as `dict` (a jsonb column); plain strings, numbers
and booleans are typed as usual.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Product(EntityModel):
    """A product of the catalogue."""

    sku: Key[str] = Field(description="The product's stock-keeping unit.")
    name: str = Field(description="Its name.")
    stock: int = Field(description="Units in stock.")
    price: dict[str, Any] = Field(description='Its price, a Decimal128: {"$numberDecimal": "1.50"}.')
    updated_at: dict[str, Any] = Field(description='When it last changed, a date: {"$date": "2026-01-02T00:00:00Z"}; '
                                       "the endpoint's cursor field.")


class Event(EntityModel):
    """An event of the catalogue (read whole every run)."""

    event_no: Key[int] = Field(description="Number of the event.")
    kind: str = Field(description="What happened.")
