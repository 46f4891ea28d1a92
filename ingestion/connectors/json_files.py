"""Connector for `json_files` systems: a folder of deliveries, one sub-folder per delivery.

A delivery folder is named by when its data was taken (`2026-01-01` or `2026-01-01T06:00:00Z`);
that moment becomes the batch timestamp, so history follows the source's clock, not ours.
Run on its own to see what a folder holds: `python -m ingestion.connectors.json_files FOLDER`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.connectors.base import PendingLoad
from metadata.models import Connection, JsonFilesConnection


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
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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
                f"delivery folder {folder} is not named by an ISO date or timestamp (e.g. 2026-01-31); "
                "rename or remove it"
            )
        found.append(Delivery(folder.name, folder, timestamp))
    return sorted(found, key=lambda d: (d.timestamp, d.name))


def read_records(path: Path, *, chunk_size: int = 1 << 20) -> Iterator[dict[str, Any]]:
    """The records of one endpoint file (a JSON array of objects), decoded one at a time.

    Streaming keeps memory flat: a whole 1M-record file parsed at once costs several times its size.
    """
    if not path.exists():
        raise SourceError(f"{path}: file missing from the delivery")
    with open(path, encoding="utf-8") as file:
        for record, _ in _ArrayReader(path, file, chunk_size).records():
            yield record


def read_raw_records(path: Path, *, chunk_size: int = 1 << 20) -> Iterator[str]:
    """The same records as `read_records`, each as its JSON text from the file (checked, not re-encoded),
    for writers that store JSON as it came."""
    if not path.exists():
        raise SourceError(f"{path}: file missing from the delivery")
    with open(path, encoding="utf-8") as file:
        for _, raw in _ArrayReader(path, file, chunk_size).records():
            yield raw


class _ArrayReader:
    """Walks a JSON array in a sliding text buffer, tracking line and column for error messages."""

    def __init__(self, path: Path, file: Any, chunk_size: int) -> None:
        self.path, self.file, self.chunk_size = path, file, chunk_size
        self.buffer, self.pos, self.eof = "", 0, False
        self.lines_before, self.column_before = 0, 0  # position of buffer[0] in the file
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.file.read(self.chunk_size)
        self.eof = not chunk
        self.buffer += chunk
        return bool(chunk)

    def _drop_consumed(self) -> None:
        consumed = self.buffer[: self.pos]
        newlines = consumed.count("\n")
        self.lines_before += newlines
        if newlines:
            self.column_before = len(consumed) - consumed.rfind("\n") - 1
        else:
            self.column_before += len(consumed)
        self.buffer, self.pos = self.buffer[self.pos:], 0

    def _error(self, message: str, lineno: int, colno: int) -> SourceError:
        line = self.lines_before + lineno
        column = colno + (self.column_before if lineno == 1 else 0)
        return SourceError(f"{self.path}: not valid JSON at line {line}, column {column}: {message}")

    def _next_char(self) -> str:
        """The next non-blank character (not consumed), or '' at the end of the file."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos].isspace():
                self.pos += 1
            if self.pos < len(self.buffer) or not self._fill():
                return self.buffer[self.pos] if self.pos < len(self.buffer) else ""

    def _where(self) -> tuple[int, int]:
        before = self.buffer[: self.pos]
        lineno = before.count("\n") + 1
        return lineno, len(before) - before.rfind("\n")

    def records(self) -> Iterator[tuple[dict[str, Any], str]]:
        """Each record, decoded, with its text."""
        first = self._next_char()
        if first != "[":
            found = "an empty file" if first == "" else f"{first!r}"
            raise SourceError(f"{self.path}: expected a JSON array of records, found {found}")
        self.pos += 1
        if self._next_char() == "]":
            self.pos += 1
            return
        number = 0
        while True:
            self._next_char()
            while True:
                try:
                    record, end = self.decoder.raw_decode(self.buffer, self.pos)
                    break
                except json.JSONDecodeError as err:
                    if not self._fill():  # a real error, not a record cut by the buffer's end
                        raise self._error(err.msg, err.lineno, err.colno) from err
            number += 1
            if not isinstance(record, dict):
                raise SourceError(f"{self.path}: record {number} is {type(record).__name__}, expected an object")
            yield record, self.buffer[self.pos:end]
            self.pos = end
            separator = self._next_char()
            if separator == "]":
                self.pos += 1
                break
            if separator != ",":
                raise self._error("expected ',' or ']' after a record", *self._where())
            self.pos += 1
            if self.pos > self.chunk_size:
                self._drop_consumed()
        if self._next_char() != "":
            raise self._error("extra data after the array", *self._where())


class JsonFilesConnector:
    """The `json_files` connector: each run lands the oldest delivery not landed yet."""

    @staticmethod
    def _root(connection: Connection, base_dir: Path) -> Path:
        assert isinstance(connection, JsonFilesConnection)
        path = Path(connection.path)  # type: ignore[arg-type]  # secrets are resolved before a connector runs
        return path if path.is_absolute() else base_dir / path

    def next_load(
        self, system_id: str, connection: Connection, *, landed: set[str], base_dir: Path
    ) -> PendingLoad | None:
        """The oldest delivery not landed yet (a late delivery, older than landed ones, included)."""
        for delivery in deliveries(self._root(connection, base_dir)):
            if delivery.name not in landed:
                return PendingLoad(delivery.name, delivery.timestamp)
        return None

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *, base_dir: Path) -> PendingLoad:
        for delivery in deliveries(self._root(connection, base_dir)):
            if delivery.name == source_ref:
                return PendingLoad(delivery.name, delivery.timestamp)
        raise SourceError(f"system {system_id}: delivery {source_ref!r} is no longer in the source folder")

    def raw_records(self, connection: Connection, endpoint: str, source_ref: str, *, base_dir: Path) -> Iterator[str]:
        assert isinstance(connection, JsonFilesConnection)
        return read_raw_records(self._root(connection, base_dir) / source_ref / connection.endpoints[endpoint])


if __name__ == "__main__":
    for delivery in deliveries(Path(sys.argv[1])):
        counts = {f.name: sum(1 for _ in read_records(f)) for f in sorted(delivery.folder.glob("*.json"))}
        print(delivery.name, delivery.timestamp.isoformat(), counts)
