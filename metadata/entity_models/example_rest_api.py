"""Entity model of API01, the example REST system in metadata/examples/rest_api (not part of the demo)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from metadata.entity_model import EntityModel, Key


class Address(BaseModel):
    """The item's address, as the API nests it."""

    city: str = Field(description="City of the item's address.")


class Item(EntityModel):
    """An item of the example API."""

    id: Key[int] = Field(description="Number of the item.")
    name: str = Field(description="Its name.")
    updated_at: dt.datetime = Field(description="When the API last changed it: the endpoint's cursor field.")
    address: Address = Field(description="Where it is (flattened to address_city).")
