"""How a row of a SQL database becomes the JSON text it lands as, its values keeping their meaning.

- numerics (`numeric`/`decimal`) are written as their exact text, never through a float: `1.50` lands as the
  JSON number `1.50` (jsonb keeps its scale); NaN and infinities, which JSON has no number for, as the strings
  `"NaN"`, `"Infinity"`, `"-Infinity"` (floats too, as the `files` connector does);
- timestamps with a zone as ISO 8601 with their offset (the session runs in UTC: `+00:00`), every microsecond
  kept; timestamps without a zone as ISO 8601 without an offset, the wall-clock value as stored (no zone is
  invented); dates and times as ISO text; intervals as ISO 8601 durations (`P1DT3600S`);
- binary as base64 text; JSON columns as JSON (an object, not a string holding JSON); booleans as booleans;
  UUIDs as their text; arrays as JSON arrays; integers beyond 64 bits exactly; anything else as its text.

Encoding is orjson's (fast; it writes datetimes natively), with a fallback for what orjson refuses.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

_NON_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity", "sNaN": "NaN", "-NaN": "NaN",
               "-sNaN": "NaN"}


def _float_text(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _decimal(value: Decimal) -> Any:
    text = str(value)
    if not value.is_finite():
        return _NON_FINITE.get(text, text)
    return orjson.Fragment(text)  # the exact digits, as a JSON number


def iso_duration(value: dt.timedelta) -> str:
    """`P<days>DT<seconds>S`, seconds with their microseconds (PostgreSQL's interval as Python reads it)."""
    seconds = f"{value.seconds}.{value.microseconds:06d}".rstrip("0").rstrip(".")
    return f"P{value.days}DT{seconds}S"


def _default(value: Any) -> Any:
    """What orjson cannot write itself."""
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, dt.time):  # a time with a zone (orjson writes only naive times)
        return value.isoformat()
    return str(value)  # ip addresses, ranges, enums of drivers: their text


def _plain(value: Any) -> Any:
    """The value with what orjson refuses replaced: integers beyond 64 bits, times with a zone, non-finite floats
    nested in arrays or JSON."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))
    if isinstance(value, float) and not math.isfinite(value):
        return _float_text(value)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# A reflected table's column names are SQLAlchemy's `quoted_name`, a str subclass, which orjson writes only with this.
_KEYS = orjson.OPT_NON_STR_KEYS


def encode_row(row: Mapping[str, Any]) -> str:
    """The row as one JSON object's text (column name -> value)."""
    for key, value in row.items():
        if type(value) is float and not math.isfinite(value):  # orjson would write null
            row = {**row, key: _float_text(value)}
        elif type(value) is list and any(type(v) is float and not math.isfinite(v) for v in value):
            row = {**row, key: _plain(value)}
    try:
        return orjson.dumps(row, default=_default, option=_KEYS).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_plain(row), default=_default, option=_KEYS).decode()


def cursor_text(value: Any) -> str:
    """A cursor value as `audit.cursor` stores it: ISO 8601 for dates and timestamps, exact digits for numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)
