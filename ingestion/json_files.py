"""Connector for `json_files` systems: a folder of deliveries, one sub-folder per delivery.

A delivery folder is named by when its data was taken (`2026-01-01` or `2026-01-01T06:00:00Z`);
that moment becomes the batch timestamp, so history follows the source's clock, not ours.
Run on its own to see what a folder holds: `python -m ingestion.json_files FOLDER`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator


class SourceError(ValueError):
    """The source holds something the connector cannot read; the message names the file."""


@dataclass(frozen=True)
class Delivery:
    name: str
    folder: Path
    timestamp: dt.datetime


def _parse_timestamp(name: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(name.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def deliveries(root: Path) -> list[Delivery]:
    """Every delivery under `root`, oldest first."""
    if not root.is_dir():
        raise SourceError(f"source folder {root} does not exist; create it or fix 'connection.path' in systems.json")
    found: list[Delivery] = []
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        timestamp = _parse_timestamp(folder.name)
        if timestamp is None:
            raise SourceError(
                f"delivery folder {folder} is not named by an ISO date or timestamp (e.g. 2026-01-31); rename or remove it"
            )
        found.append(Delivery(folder.name, folder, timestamp))
    return sorted(found, key=lambda d: (d.timestamp, d.name))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of one endpoint file (a JSON array of objects)."""
    if not path.exists():
        raise SourceError(f"{path}: file missing from the delivery")
    try:
        data = json.loads(path.read_bytes())
    except json.JSONDecodeError as err:
        raise SourceError(f"{path}: not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}") from err
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a JSON array of records, found {type(data).__name__}")
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise SourceError(f"{path}: record {number} is {type(record).__name__}, expected an object")
        yield record


if __name__ == "__main__":
    for delivery in deliveries(Path(sys.argv[1])):
        counts = {f.name: sum(1 for _ in read_records(f)) for f in sorted(delivery.folder.glob("*.json"))}
        print(delivery.name, delivery.timestamp.isoformat(), counts)
