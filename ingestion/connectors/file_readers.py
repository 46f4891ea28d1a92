"""Readers of the `files` connector: each turns one open file (bytes, already decompressed) into its
records, each as the JSON text that lands in `payload`, streaming so that memory stays flat in the
file's size.

What a record is, per format (the README's "File drops (files)" says the same):
- csv: a JSON object of the header's names -> the row's fields, every value a string exactly as written
  (no type inference: `007` stays "007", an empty field is "", never null); the declared encoding is
  decoded strictly, a UTF-8 byte-order mark is dropped, quoted fields may hold the delimiter, quotes
  (doubled) and line breaks; a blank line between rows is skipped.
- jsonl: each non-blank line is one JSON object, landed as its text from the file (UTF-8).
- json: one JSON array of objects, read as json_files reads a delivery file (streamed, not loaded whole).
- parquet: each row as a JSON object of its columns; numbers and strings as JSON numbers and strings,
  timestamps / dates / times / decimals as their exact text (ISO 8601 with all the digits of the column's
  unit and its offset; a decimal with its scale), binary as base64, NaN / Infinity as those strings
  (PostgreSQL's jsonb has no such numbers).
Every reader refuses what PostgreSQL's jsonb would refuse, naming the file and the line (or row).
"""

from __future__ import annotations

import base64
import codecs
import csv
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Iterator
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingestion.connectors.json_files import (
    _SHALLOW_LENGTH,
    _SUSPECT,
    SourceError,
    _ArrayReader,
    _bad_escape,
    _NonFiniteNumber,
    _refuse_constant,
    _too_deep,
)
from metadata.models import CsvOptions

__all__ = ["SourceError", "csv_records", "json_array_records", "jsonl_records", "parquet_records"]

PARQUET_BATCH_ROWS = 10_000  # rows decoded at a time: memory stays flat in the file's size


def _decoded_lines(file: IO[bytes], encoding: str, label: str) -> Iterator[str]:
    """The file's lines as text, each decoded on its own so that a byte the encoding cannot read is
    named by its line. Only encodings in which a line break is the byte 0x0a qualify (the model checks)."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # drops a byte-order mark at the start, and only there
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    number = 0
    for number, raw in enumerate(file, 1):  # noqa: B007 - `number` names the last line below
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError as err:
            raise SourceError(f"{label}, line {number}: byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the "
                              f"line is not valid {encoding}; fix the file or declare its encoding") from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise SourceError(f"{label}, line {number}: the file ends inside a character of {encoding}") from None


def csv_records(file: IO[bytes], options: CsvOptions, label: str) -> Iterator[str]:
    """The rows of a CSV file with a header row, each a JSON object of strings (see the module's rule)."""
    lines = _decoded_lines(file, options.encoding, label)
    reader = csv.reader(lines, delimiter=options.delimiter, quotechar=options.quote_char, strict=True)
    header: list[str] | None = None
    dumps = orjson.dumps  # an object of strings: orjson writes the same JSON as json.dumps, ten times faster
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise SourceError(f"{label}, line {start}: not valid CSV: {err}; fix the file") from None
        if not row:
            continue  # a blank line
        if any("\x00" in value for value in row):
            raise SourceError(f"{label}, line {start}: holds a NUL character, which PostgreSQL's jsonb cannot "
                              "store; remove it from the file")
        if header is None:
            header = row
            seen: set[str] = set()
            for name in header:
                if name in seen:
                    raise SourceError(f"{label}, line {start}: the header names the field {name!r} twice; "
                                      "rename one")
                seen.add(name)
            continue
        if len(row) != len(header):
            raise SourceError(f"{label}, line {start}: {len(row)} fields, but the header has {len(header)}; "
                              "fix the row (a field holding the delimiter must be quoted)")
        yield dumps(dict(zip(header, row, strict=True))).decode()


def jsonl_records(file: IO[bytes], label: str) -> Iterator[str]:
    """The objects of a JSON lines file, each as its line's text (UTF-8; blank lines skipped)."""
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    for number, text in enumerate(_decoded_lines(file, "utf-8", label), 1):
        raw = text.strip()
        if not raw:
            continue
        lead = len(text) - len(text.lstrip())  # columns count from the line's start
        try:
            record = decoder.decode(raw)
        except json.JSONDecodeError as err:
            raise SourceError(f"{label}, line {number}: not valid JSON at column {lead + err.colno}: {err.msg}; "
                              "fix the line") from None
        except _NonFiniteNumber as err:
            raise SourceError(f"{label}, line {number}: {err} is not a JSON number and PostgreSQL's jsonb "
                              "refuses it; write null or a finite number") from None
        except RecursionError:
            raise SourceError(f"{label}, line {number}: nested too deeply; flatten the record") from None
        if type(record) is not dict:
            raise SourceError(f"{label}, line {number}: is a JSON {type(record).__name__}, expected an object")
        if len(raw) >= _SHALLOW_LENGTH and _too_deep(record, raw):
            raise SourceError(f"{label}, line {number}: nested deeper than the limit for a record; flatten it")
        if "\\u" in raw and _SUSPECT.search(raw) and (bad := _bad_escape(raw)):
            raise SourceError(f"{label}, line {number}, column {lead + bad[0] + 1}: {bad[1]}; remove it or replace it "
                              "in the source")
        yield raw


def json_array_records(file: IO[bytes], label: str, *, chunk_size: int = 1 << 20) -> Iterator[str]:
    """The objects of one JSON array, streamed from a sliding buffer (the array is never held whole),
    each as its text from the file: json_files' reader, with the same checks and messages."""
    for _, raw in _ArrayReader(label, file, chunk_size).records():  # type: ignore[arg-type]  # label for messages
        yield raw


def _json_default(value: Any) -> Any:
    """Values inside nested Parquet columns (lists, structs, maps) that JSON has no type for."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.timedelta):
        return str(value)
    raise TypeError(f"a value of type {type(value).__name__} has no JSON form")


def _column_values(column: pa.Array | pa.ChunkedArray) -> list[Any]:
    """One column of a batch as JSON-ready Python values, exact where Python's types would round."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S").to_pylist()  # %S carries the unit's digits
        text = pc.strftime(column, format="%Y-%m-%dT%H:%M:%S%z")
        return pc.replace_substring_regex(text, pattern=r"([+-]\d\d)(\d\d)$", replacement=r"\1:\2").to_pylist()
    if pa.types.is_date(kind) or pa.types.is_time(kind) or pa.types.is_decimal(kind):
        return column.cast(pa.string()).to_pylist()
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return [None if v is None else base64.b64encode(v).decode("ascii") for v in column.to_pylist()]
    values = column.to_pylist()
    if pa.types.is_floating(kind):
        return [v if v is None or math.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
                for v in values]
    return values


def parquet_records(file: IO[bytes], label: str, *, batch_rows: int = PARQUET_BATCH_ROWS) -> Iterator[str]:
    """The rows of a Parquet file, each as a JSON object (see the module's rule), read a row batch at a time.
    `file` must be seekable (Parquet keeps its schema at the end)."""
    try:
        parquet = pq.ParquetFile(file)
        batches: Iterable[pa.RecordBatch] = parquet.iter_batches(batch_size=batch_rows)
        dumps = json.JSONEncoder(ensure_ascii=False, default=_json_default, allow_nan=False).encode
        row = 0
        for batch in batches:
            names = batch.schema.names
            columns = [_column_values(batch.column(i)) for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                row += 1
                text = dumps(dict(zip(names, values, strict=True)))
                if "\\u0000" in text:
                    raise SourceError(f"{label}, row {row}: holds a NUL character, which PostgreSQL's jsonb "
                                      "cannot store; remove it from the file")
                yield text
    except SourceError:
        raise
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"{label}: not a readable Parquet file: {err}; replace the file") from None
    except ValueError as err:  # a NaN inside a nested column
        raise SourceError(f"{label}: a value has no JSON form: {err}") from None
