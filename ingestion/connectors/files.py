"""Connector for `files` systems: a folder other systems drop files into; per endpoint a glob and a format.

Files are listed with dlt's filesystem pieces (`glob_files` over an fsspec filesystem: a local folder
today, other fsspec locations later) and read by the streaming readers in `file_readers`, which keep
each record's text as the source gave it.

Which files a batch reads (the cursor rule; the README's "File drops (files)" says the same). Files are
ordered by (modification time in ns, path relative to the folder). An endpoint's cursor in `audit.cursor`
is the last file a landed batch read, written `2026-01-02T06:00:00.123456789Z orders/day2.csv`. A run:
- is timed T (its UTC time, the batch timestamp and `source_ref`); a file counts only once its
  modification time is at least `settle_seconds` before T, so a file still being written waits;
- reads, per `new_files` endpoint, the settled files after the cursor, oldest first, and advances the
  cursor to the last one (a file rewritten in place gets a new modification time and is read again);
  a `full` endpoint reads every settled matching file, every run;
- lands nothing (no batch) when no `new_files` endpoint has such a file and no endpoint is `full`.
Its edge: a file that arrives with a modification time older than the cursor (`mv` or `cp -p` of an old
file, a clock set back) is not seen; `touch` it and the next run lands it.
Run on its own to see what an endpoint would read: `python -m ingestion.connectors.files FOLDER GLOB`.
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dlt.common.storages.fsspec_filesystem import FileItem, fsspec_filesystem, glob_files

from ingestion.connectors.base import CursorReached, EndpointCheck, PendingLoad
from ingestion.connectors.file_readers import (
    SourceError,
    csv_records,
    json_array_records,
    jsonl_records,
    parquet_records,
)
from metadata.models import Connection, FileEndpoint, FilesConnection

NS = 1_000_000_000


@dataclass(frozen=True, order=True)
class DroppedFile:
    """One matching file, ordered as the cursor orders files."""

    mtime_ns: int
    name: str  # path relative to the system's folder, '/'-separated
    path: str  # where to open it

    @property
    def cursor(self) -> str:
        return cursor_value(self.mtime_ns, self.name)


def cursor_value(mtime_ns: int, name: str) -> str:
    """The cursor text of a file: its modification time (UTC, ISO 8601 with nanoseconds) and its name.
    The time has a fixed width, so the text also sorts as the files do (within one endpoint)."""
    seconds, ns = divmod(mtime_ns, NS)
    when = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{when}.{ns:09d}Z {name}"


def parse_cursor(value: str, *, where: str) -> tuple[int, str]:
    """(modification time in ns, name) of a cursor text written by `cursor_value`."""
    when, _, name = value.partition(" ")
    try:
        seconds = dt.datetime.strptime(when[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        if len(when) != 30 or when[19] != "." or when[-1] != "Z" or not name:
            raise ValueError(value)
        return int(seconds.timestamp()) * NS + int(when[20:29]), name
    except ValueError:
        raise SourceError(f"{where}: the stored cursor {value!r} is not '<UTC time with nanoseconds>Z <file>'; "
                          "fix or delete its row in audit.cursor") from None


def _root(connection: FilesConnection, base_dir: Path) -> Path:
    path = Path(connection.path)  # type: ignore[arg-type]  # secrets are resolved before a connector runs
    return path if path.is_absolute() else base_dir / path


def list_files(root: Path, glob: str) -> list[DroppedFile]:
    """Every file the glob matches under `root` (hidden files excluded), in cursor order."""
    if not root.is_dir():
        raise SourceError(f"source folder {root} does not exist; create it or fix 'connection.path' in systems.json")
    client, _ = fsspec_filesystem("file")
    found = []
    for item in glob_files(client, str(root), glob):
        found.append(_dropped(root, item))
    return sorted(found)


def _dropped(root: Path, item: FileItem) -> DroppedFile:
    # fsspec reports a float of seconds (sub-microsecond digits lost); a local file's exact time is in stat.
    path = str(root / item["relative_path"])
    return DroppedFile(os.stat(path).st_mtime_ns, item["relative_path"], path)


def _batch_time(source_ref: str, *, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(source_ref.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise SourceError(f"{where}: batch {source_ref!r} is not named by its UTC time; it was not landed by the "
                          "files connector")
    return value.astimezone(dt.UTC)


def _settled_before(timestamp: dt.datetime, connection: FilesConnection) -> int:
    """The latest modification time (ns) a file of a batch timed `timestamp` may have."""
    at = int(timestamp.timestamp()) * NS + timestamp.microsecond * 1000 + 999
    return at - int(connection.settle_seconds * NS)


def files_to_read(root: Path, spec: FileEndpoint, connection: FilesConnection, *, cursor: str | None,
                  timestamp: dt.datetime, where: str) -> list[DroppedFile]:
    """The files one endpoint reads in a batch timed `timestamp` that starts at `cursor` (module rule)."""
    files = list_files(root, spec.glob)
    if spec.load == "full":
        limit = time.time_ns() - int(connection.settle_seconds * NS)
        return [f for f in files if f.mtime_ns <= limit]
    limit = _settled_before(timestamp, connection)
    after = parse_cursor(cursor, where=where) if cursor is not None else None
    return [f for f in files if f.mtime_ns <= limit and (after is None or (f.mtime_ns, f.name) > after)]


def _gzipped(spec: FileEndpoint, name: str) -> bool:
    return spec.compression == "gzip" or (spec.compression == "infer" and name.lower().endswith(".gz"))


def _records(file: DroppedFile, spec: FileEndpoint, label: str) -> Iterator[str]:
    """The records of one file, decompressed on the fly (gzip through the stdlib)."""
    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(open(file.path, "rb"))
        if _gzipped(spec, file.name):
            stream = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
            if spec.format == "parquet":
                # Parquet is read from its end (the footer): a gzip stream cannot seek there, so it is
                # unpacked into a temporary file first (on disk, not in memory).
                spooled = stack.enter_context(tempfile.TemporaryFile())
                try:
                    shutil.copyfileobj(stream, spooled, 1 << 20)
                except (OSError, EOFError) as err:
                    raise SourceError(f"{label}: not readable as gzip: {err}; replace the file") from None
                spooled.seek(0)
                stream = spooled
        try:
            if spec.format == "csv":
                yield from csv_records(stream, spec.csv_options(), label)
            elif spec.format == "jsonl":
                yield from jsonl_records(stream, label)
            elif spec.format == "json":
                yield from json_array_records(stream, label)
            else:
                yield from parquet_records(stream, label)
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise SourceError(f"{label}: not readable as gzip: {err}; replace the file or set 'compression'") from None


class FilesConnector:
    """The `files` connector: each run lands, per endpoint, the files dropped since the last batch."""

    def next_load(self, system_id: str, connection: Connection, *, landed: set[str],
                  cursors: Mapping[str, str], base_dir: Path) -> PendingLoad | None:
        """A load timed now when some endpoint is `full` or has a settled file after its cursor; else None."""
        assert isinstance(connection, FilesConnection)
        now = dt.datetime.now(dt.UTC)
        root = _root(connection, base_dir)
        for endpoint, spec in connection.endpoints.items():
            where = f"system {system_id}, endpoint {endpoint}"
            if spec.load == "full" or files_to_read(root, spec, connection, cursor=cursors.get(endpoint),
                                                    timestamp=now, where=where):
                return PendingLoad(_label(now), now, dict(cursors))
        return None

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *,
                  cursors: Mapping[str, str], base_dir: Path) -> PendingLoad:
        """The batch timed `source_ref` again: the files after where it started, up to its time."""
        return PendingLoad(source_ref, _batch_time(source_ref, where=f"system {system_id}"), dict(cursors))

    def raw_records(self, connection: Connection, endpoint: str, load: PendingLoad, *, base_dir: Path,
                    reached: CursorReached) -> Iterator[str]:
        """The records of the endpoint's files in the load, file after file; after each file the cursor
        advances to it. An endpoint with no new file keeps its cursor (recorded as the batch's range, so
        a re-land of the batch reads nothing for it either)."""
        assert isinstance(connection, FilesConnection)
        spec = connection.endpoints[endpoint]
        start = load.cursors.get(endpoint)
        where = f"endpoint {endpoint}"
        files = files_to_read(_root(connection, base_dir), spec, connection, cursor=start,
                              timestamp=load.timestamp, where=where)
        if not files and start is not None:
            reached.advance(endpoint, start)
        for file in files:
            yield from _records(file, spec, f"endpoint {endpoint}, file {file.path}")
            reached.advance(endpoint, file.cursor)

    def check(self, connection: Connection, *, base_dir: Path) -> list[EndpointCheck]:
        """Per endpoint, without landing anything: the folder is there and readable, how many files the
        glob matches, and whether the newest of them opens and gives its first record in the declared
        format, compression and encoding (the rest of the file is not read)."""
        assert isinstance(connection, FilesConnection)
        root = _root(connection, base_dir)
        results = []
        for endpoint, spec in connection.endpoints.items():
            try:
                if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
                    raise SourceError(f"source folder {root} is not readable by this user; fix its permissions")
                files = list_files(root, spec.glob)
                if not files:
                    results.append(EndpointCheck(endpoint, True, f"folder {root} readable; no file matches "
                                                                 f"{spec.glob!r} yet"))
                    continue
                newest = max(files)
                with closing(_records(newest, spec, f"endpoint {endpoint}, file {newest.path}")) as records:
                    first = next(records, None)
                what = "its first record read" if first is not None else "it holds no record"
                results.append(EndpointCheck(endpoint, True, f"folder {root} readable; {len(files)} file(s) match "
                                                             f"{spec.glob!r}; newest {newest.name}: {what}"))
            except (SourceError, OSError) as err:
                results.append(EndpointCheck(endpoint, False, str(err)))
        return results


def _label(timestamp: dt.datetime) -> str:
    return timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


if __name__ == "__main__":
    for dropped in list_files(Path(sys.argv[1]), sys.argv[2]):
        print(dropped.cursor)
