"""Entity model of RST01, the test-only rest_api system served by tests/rest_fixture_server.py
(test_rest_api_pipeline.py)."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Item(EntityModel):
    """An item of the fixture API."""

    id: Key[int] = Field(description="Number of the item.")
    name: str = Field(description="Its name; changed on day 2 for one item.")
    updated_at: dt.datetime = Field(description="When the API last changed it: the endpoint's cursor field.")
    address: dict = Field(description="A nested object, kept as JSON.")
