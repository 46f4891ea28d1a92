"""Connector for `json_files` systems: a folder of deliveries, one sub-folder per delivery.

A delivery folder is named by when its data was taken (`2026-01-01` or `2026-01-01T06:00:00Z`);
that moment becomes the batch timestamp, so history follows the source's clock, not ours.
Run on its own to see what a folder holds: `python -m ingestion.connectors.json_files FOLDER`.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.connectors.base import CursorReached, EndpointCheck, PendingLoad
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
    Every record is checked as `read_raw_records` checks it.
    """
    if not path.exists():
        raise SourceError(f"{path}: file missing from the delivery")
    with open(path, "rb") as file:
        for record, _ in _ArrayReader(path, file, chunk_size).records():
            yield record


def read_raw_records(path: Path, *, chunk_size: int = 1 << 20) -> Iterator[str]:
    """The same records as `read_records`, each as its JSON text from the file (checked, not re-encoded),
    for writers that store JSON as it came.

    The text lands as-is in a jsonb column, so anything PostgreSQL would refuse there is refused here,
    naming the file, the record and its line and column, before the writer sees it: invalid UTF-8,
    nesting deeper than MAX_DEPTH levels, the non-standard numbers NaN / Infinity / -Infinity, and the
    escapes \\u0000 and lone surrogates.
    """
    if not path.exists():
        raise SourceError(f"{path}: file missing from the delivery")
    with open(path, "rb") as file:
        for _, raw in _ArrayReader(path, file, chunk_size).records():
            yield raw


MAX_DEPTH = 100  # levels of nested objects / arrays in one record, the record itself being level 1

# Where a record's text may hold an escape PostgreSQL's jsonb refuses: \u0000, a high surrogate escape not
# followed by a low one, a low one not preceded by a high one, or an escaped backslash before a 'u' (which
# may fool the other tests). Only records with a match get the exact check, so well-formed surrogate pairs
# (emoji written by an ASCII-only encoder) cost one regex search.
_SUSPECT = re.compile(
    r"\\(?:u0000|\\u|u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|u[dD][c-fC-F][0-9a-fA-F]{2}(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}))"
)
# The escaped backslashes and the \u0000 / surrogate escapes of a text, left to right, so that an escaped
# backslash followed by the letters u0000 is never read as an escape; group 1 is a \uXXXX escape's code.
_ESCAPE = re.compile(r"\\(?:\\|u(0000|[dD][89a-fA-F][0-9a-fA-F]{2}))")
# The first NaN / Infinity / -Infinity outside a string (the letters inside a string are just text).
_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)


class _NonFiniteNumber(ValueError):
    """Raised from inside the JSON decoder (`parse_constant`) at the first NaN / Infinity / -Infinity."""


def _refuse_constant(name: str) -> Any:
    raise _NonFiniteNumber(name)


# A record nested deeper than MAX_DEPTH has more than MAX_DEPTH opening and as many closing brackets.
_SHALLOW_LENGTH = 2 * (MAX_DEPTH + 1)


def _too_deep(record: Any, raw: str) -> bool:
    """Whether the record nests deeper than MAX_DEPTH. It cannot if its text holds at most MAX_DEPTH '{'
    and '[' (those inside strings only add to the count): that C-speed count settles almost every record;
    only the rest are walked, with a stack rather than recursion."""
    if raw.count("{") + raw.count("[") <= MAX_DEPTH:
        return False
    stack: list[tuple[Any, int]] = [(record, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _bad_escape(raw: str) -> tuple[int, str] | None:
    """Where in `raw` the first escape PostgreSQL's jsonb refuses starts, and why; None if there is none."""
    high: re.Match[str] | None = None  # a high surrogate escape, waiting for its low half
    for match in _ESCAPE.finditer(raw):
        code = int(match.group(1), 16) if match.group(1) else None
        if high is not None:
            if code is not None and 0xDC00 <= code <= 0xDFFF and match.start() == high.end():
                high = None
                continue
            break
        if code == 0:
            return match.start(), "the escape \\u0000 (a NUL character), which PostgreSQL's jsonb cannot store"
        if code is not None and 0xD800 <= code <= 0xDBFF:
            high = match
        elif code is not None and 0xDC00 <= code <= 0xDFFF:
            return match.start(), (f"the escape {match.group(0)}, a low surrogate without the high one before it, "
                                   "which PostgreSQL's jsonb refuses")
    if high is not None:
        return high.start(), (f"the escape {high.group(0)}, a high surrogate not followed by a low one, "
                              "which PostgreSQL's jsonb refuses")
    return None


class _ArrayReader:
    """Walks a JSON array in a sliding text buffer, tracking line and column for error messages.

    The file is read as bytes and decoded here, so that invalid UTF-8 is named by its byte offset and
    the record it is in, and raised only once the records before it have been read.
    """

    def __init__(self, path: Path, file: Any, chunk_size: int) -> None:
        self.path, self.file, self.chunk_size = path, file, chunk_size
        self.buffer, self.pos, self.eof = "", 0, False
        self.lines_before, self.column_before = 0, 0  # position of buffer[0] in the file
        self.decoder = json.JSONDecoder(parse_constant=_refuse_constant)
        self.undecoded, self.bytes_decoded = b"", 0  # a character cut by the chunk's end; bytes before it
        self.bad_byte: int | None = None  # file offset of the first byte that is not UTF-8
        self.number, self.done = 0, False  # records read; whether the array has ended
        # Buffer index of the next '\\u' at or after the record being read (-1: none in the buffer), found
        # over whole chunks at C speed: only records holding one get the escape check.
        self.escape = -1

    def _fill(self) -> bool:
        if self.bad_byte is not None:
            raise self._not_utf8()
        if self.eof:
            return False
        chunk = self.file.read(self.chunk_size)
        self.eof = not chunk
        data = self.undecoded + chunk
        try:
            text, used = codecs.utf_8_decode(data, "strict", self.eof)
        except UnicodeDecodeError as err:
            # Keep what precedes the bad byte: its records are read (or rejected) first, so the error
            # names the record the byte is in.
            text, used = codecs.utf_8_decode(data[: err.start], "strict", True)
            self.bad_byte = self.bytes_decoded + err.start
        self.bytes_decoded += used
        self.undecoded = data[used:]
        searched = len(self.buffer) - 1  # an escape may straddle the old end
        self.buffer += text
        if self.escape == -1:
            self.escape = self.buffer.find("\\u", max(searched, 0))
        return bool(text) or (bool(chunk) and self.bad_byte is None) or self._fill()

    def _not_utf8(self) -> SourceError:
        assert self.bad_byte is not None
        value = self.undecoded[0] if self.undecoded else None
        byte = f" (byte 0x{value:02x})" if value is not None else ""
        return self._reject(len(self.buffer), f"not valid UTF-8 at byte offset {self.bad_byte}{byte}; "
                                              "save the file as UTF-8")

    def _drop_consumed(self) -> None:
        consumed = self.buffer[: self.pos]
        newlines = consumed.count("\n")
        self.lines_before += newlines
        if newlines:
            self.column_before = len(consumed) - consumed.rfind("\n") - 1
        else:
            self.column_before += len(consumed)
        if self.escape != -1:
            self.escape -= self.pos
        self.buffer, self.pos = self.buffer[self.pos:], 0

    def _record(self) -> str:
        """The record being read, for messages."""
        return "after the last record" if self.done else f"record {self.number + 1}"

    def _error(self, message: str, lineno: int, colno: int) -> SourceError:
        line = self.lines_before + lineno
        column = colno + (self.column_before if lineno == 1 else 0)
        return SourceError(f"{self.path}: not valid JSON at line {line}, column {column}: {message} "
                           f"({self._record()}); fix the file and run again")

    def _reject(self, index: int, message: str) -> SourceError:
        """The record being read is refused; `index` is where in the buffer its problem is."""
        before = self.buffer[:index]
        lineno = before.count("\n") + 1
        line = self.lines_before + lineno
        column = len(before) - before.rfind("\n") + (self.column_before if lineno == 1 else 0)
        return SourceError(f"{self.path}: {self._record()}, line {line}, column {column}: {message}")

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

    def _decode(self) -> tuple[Any, int]:
        """The record starting at `pos` and where it ends, reading more of the file while it is cut off,
        or the error that names what is wrong with it (the loop in `records` tries the fast way first)."""
        while True:
            try:
                return self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as err:
                if not self._fill():  # a real error, not a record cut by the buffer's end
                    raise self._error(err.msg, err.lineno, err.colno) from err
            except _NonFiniteNumber as err:
                found = _CONSTANT.search(self.buffer, self.pos)
                while found and not found.group(1):
                    found = _CONSTANT.search(self.buffer, found.end())
                raise self._reject(found.start() if found else self.pos,
                                   f"{err} is not a JSON number and PostgreSQL's jsonb refuses it; "
                                   "write null or a finite number") from None
            except RecursionError:  # far deeper than MAX_DEPTH: the decoder itself gave up
                raise self._reject(self.pos, self._too_deep_message()) from None

    @staticmethod
    def _too_deep_message() -> str:
        return (f"nested deeper than {MAX_DEPTH} levels of objects and arrays, the limit for a record; "
                "flatten the record")

    def _check_escapes(self, raw: str, end: int) -> None:
        """Refuse the record (text `raw`, ending at buffer index `end`) if it holds an escape PostgreSQL's
        jsonb refuses; called only for records holding a '\\u'."""
        self.escape = self.buffer.find("\\u", end)
        if _SUSPECT.search(raw):
            bad = _bad_escape(raw)
            if bad:
                raise self._reject(self.pos + bad[0], f"{bad[1]}; remove it or replace it in the source")

    def records(self) -> Iterator[tuple[dict[str, Any], str]]:
        """Each record, decoded and checked, with its text.

        This loop is the hot path of landing: each check sits behind a test that is cheap for a clean
        record (a length, two character counts, a comparison with the next '\\u' in the buffer)."""
        first = self._next_char()
        if first != "[":
            found = "an empty file" if first == "" else f"{first!r}"
            raise SourceError(f"{self.path}: expected a JSON array of records, found {found}")
        self.pos += 1
        self.done = self._next_char() == "]"
        if self.done:
            self.pos += 1
        decode = self.decoder.raw_decode
        while not self.done:
            self._next_char()
            try:
                record, end = decode(self.buffer, self.pos)
            except (ValueError, RecursionError):  # cut off by the buffer's end, or wrong: see _decode
                record, end = self._decode()
            raw = self.buffer[self.pos:end]
            if type(record) is not dict:
                raise SourceError(f"{self.path}: record {self.number + 1} is {type(record).__name__}, "
                                  "expected an object")
            if len(raw) >= _SHALLOW_LENGTH and _too_deep(record, raw):
                raise self._reject(self.pos, self._too_deep_message())
            if self.pos <= self.escape < end:
                self._check_escapes(raw, end)
            self.number += 1
            yield record, raw
            self.pos = end
            separator = self._next_char()
            if separator == "]":
                self.pos += 1
                self.done = True
            elif separator != ",":
                raise self._error("expected ',' or ']' after a record", *self._where())
            else:
                self.pos += 1
                if self.pos > self.chunk_size:
                    self._drop_consumed()
        if self._next_char() != "":
            raise self._error("extra data after the array", *self._where())


CURSOR_ENDPOINT = "deliveries"  # json_files keep one cursor per system: the last delivery landed (informational)


class JsonFilesConnector:
    """The `json_files` connector: each run lands the oldest delivery not landed yet."""

    @staticmethod
    def _root(connection: Connection, base_dir: Path) -> Path:
        assert isinstance(connection, JsonFilesConnection)
        path = Path(connection.path)  # type: ignore[arg-type]  # secrets are resolved before a connector runs
        return path if path.is_absolute() else base_dir / path

    def next_load(
        self, system_id: str, connection: Connection, *, landed: set[str], cursors: Mapping[str, str], base_dir: Path
    ) -> PendingLoad | None:
        """The oldest delivery not landed yet (a late delivery, older than landed ones, included). The
        deliveries landed say what is new, not the cursor (which names only the last one landed)."""
        for delivery in deliveries(self._root(connection, base_dir)):
            if delivery.name not in landed:
                return PendingLoad(delivery.name, delivery.timestamp)
        return None

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *,
                  cursors: Mapping[str, str], base_dir: Path) -> PendingLoad:
        for delivery in deliveries(self._root(connection, base_dir)):
            if delivery.name == source_ref:
                return PendingLoad(delivery.name, delivery.timestamp)
        raise SourceError(f"system {system_id}: delivery {source_ref!r} is no longer in the source folder")

    def raw_records(self, connection: Connection, endpoint: str, load: PendingLoad, *, base_dir: Path,
                    reached: CursorReached) -> Iterator[str]:
        """The endpoint's file in the delivery; the system's one cursor (endpoint `deliveries`) names the
        last delivery landed (informational: what is new is decided by the deliveries landed)."""
        assert isinstance(connection, JsonFilesConnection)
        reached.advance(CURSOR_ENDPOINT, load.source_ref)
        return read_raw_records(self._root(connection, base_dir) / load.source_ref / connection.endpoints[endpoint])
    def check(self, connection: Connection, *, base_dir: Path) -> list[EndpointCheck]:
        """Per endpoint: the source folder is there and readable, and how many deliveries hold its file."""
        assert isinstance(connection, JsonFilesConnection)
        root = self._root(connection, base_dir)
        try:
            found = deliveries(root)
            if not os.access(root, os.R_OK | os.X_OK):
                raise SourceError(f"source folder {root} is not readable by this user; fix its permissions")
        except (SourceError, OSError) as err:
            return [EndpointCheck(endpoint, False, str(err)) for endpoint in connection.endpoints]
        results = []
        for endpoint, file in connection.endpoints.items():
            having = sum(1 for d in found if (d.folder / file).is_file())
            results.append(EndpointCheck(endpoint, True, f"folder {root} readable; {len(found)} deliveries, "
                                                         f"{having} of them with {file}"))
        return results


if __name__ == "__main__":
    for delivery in deliveries(Path(sys.argv[1])):
        counts = {f.name: sum(1 for _ in read_records(f)) for f in sorted(delivery.folder.glob("*.json"))}
        print(delivery.name, delivery.timestamp.isoformat(), counts)
