"""Entity model of VAL01, a test-only json_files system whose attributes have the types whose text can
change while their value does not (numeric, float, timestamptz, date, JSON) and an Optional one: the
value rule of silver's history and the gate/bronze type rule are tested on it (test_values.py)."""

from __future__ import annotations

import datetime as dt
import decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key


class Reading(EntityModel):
    """A meter reading."""

    reading_id: Key[int] = Field(description="Number of the reading.")
    amount: decimal.Decimal = Field(description="Amount, a decimal: 1, 1.0 and 1.00 are the same value.")
    ratio: float = Field(description="A float: its value counts, not how a session prints it.")
    measured_at: dt.datetime = Field(description="An instant, delivered with any offset.")
    local_at: dt.datetime = Field(description="A timestamp delivered without an offset: read as UTC.")
    day: dt.date = Field(description="A date.")
    count: int = Field(description="An int: 3.0 is 3, 3.5 does not fit.")
    tags: dict = Field(description="A JSON object: key order and whitespace do not count.")
    note: str | None = Field(default=None, description="Optional: absent and null are the same value.")
