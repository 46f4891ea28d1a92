"""The json_files connector reads a delivery's JSON array one record at a time, and names the file,
line and column of anything it cannot read (the same position Python's json module reports)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

from ingestion.connectors.json_files import SourceError, deliveries, read_raw_records, read_records

RECORDS = [{"id": i, "text": "x" * (i % 40) + "]},[", "nested": {"list": [1, {"deep": "}"}]}} for i in range(3000)]


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("chunk_size", [7, 100, 1 << 20])
def test_records_stream_back_exactly_whatever_the_chunk_size(
    tmp_path: Path, indent: int | None, chunk_size: int
) -> None:
    path = tmp_path / "v.json"
    path.write_text(json.dumps(RECORDS, indent=indent))
    assert list(read_records(path, chunk_size=chunk_size)) == RECORDS


@pytest.mark.parametrize("text", ["[]", "  [ \n ]  "])
def test_an_empty_array_is_no_records(tmp_path: Path, text: str) -> None:
    (tmp_path / "v.json").write_text(text)
    assert list(read_records(tmp_path / "v.json", chunk_size=2)) == []


@pytest.mark.parametrize("text, message", [
    ('[{"vehicle_id": "V1",, }]',
     "not valid JSON at line 1, column 22: Expecting property name enclosed in double quotes"),
    ('[{"a": 1},\n {"b": }]', "not valid JSON at line 2, column 8: Expecting value"),
    ('[{"a": 1} {"b": 2}]', "not valid JSON at line 1, column 11: expected ',' or ']' after a record"),
    ('[{"a": 1}] trailing', "not valid JSON at line 1, column 12: extra data after the array"),
    ('{"a": 1}', "expected a JSON array of records, found '{'"),
    ("", "expected a JSON array of records, found an empty file"),
    ('[{"a": 1}, 2]', "record 2 is int, expected an object"),
    ('[{"a": "unterminated', "not valid JSON at line 1, column 8: Unterminated string starting at"),
])
def test_bad_files_name_the_file_and_the_position(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "v.json"
    path.write_text(text)
    with pytest.raises(SourceError) as error:
        list(read_records(path, chunk_size=3))
    assert str(error.value).startswith(f"{path}: {message}")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="v.json: file missing from the delivery"):
        list(read_records(tmp_path / "v.json"))


def test_deliveries_are_named_by_their_timestamp_and_sorted(tmp_path: Path) -> None:
    for name in ("2026-01-02", "2026-01-01T06:00:00Z", "2026-01-01"):
        (tmp_path / name).mkdir()
    found = deliveries(tmp_path)
    assert [d.name for d in found] == ["2026-01-01", "2026-01-01T06:00:00Z", "2026-01-02"]
    assert found[1].timestamp == dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC)
    (tmp_path / "latest").mkdir()
    with pytest.raises(SourceError, match="latest is not named by an ISO date or timestamp"):
        deliveries(tmp_path)


# ------------------------------------------------------------------ what PostgreSQL's jsonb would refuse

def _refused(tmp_path: Path, content: bytes, chunk_size: int) -> str:
    """The message the reader refuses `content` with; both readers refuse it alike, the raw one (the
    landing's) only after yielding every record before the bad one."""
    path = tmp_path / "v.json"
    path.write_bytes(content)
    with pytest.raises(SourceError) as decoded:
        list(read_records(path, chunk_size=chunk_size))
    raw_records: list[str] = []
    with pytest.raises(SourceError) as raw:
        raw_records.extend(read_raw_records(path, chunk_size=chunk_size))
    assert str(raw.value) == str(decoded.value)
    assert [json.loads(r) for r in raw_records] == [{"id": i} for i in range(1, len(raw_records) + 1)]
    return str(raw.value).removeprefix(f"{path}: ")


DEEP = b'{"a": ' * 100 + b"[1]" + b"}" * 100  # 101 levels: the record, 99 objects in it, then the list


@pytest.mark.parametrize("chunk_size", [3, 1 << 20])
@pytest.mark.parametrize("content, message", [
    (b'[{"id": 1},\n {"id": 2, "price": NaN}]',
     "record 2, line 2, column 21: NaN is not a JSON number and PostgreSQL's jsonb refuses it; "
     "write null or a finite number"),
    (b'[{"id": 1}, {"id": 2}, {"x": "Infinity and NaN", "y": [1, -Infinity]}]',
     "record 3, line 1, column 59: -Infinity is not a JSON number"),
    (b'[\n{"id": 1},\n{"x": Infinity}\n]', "record 2, line 3, column 7: Infinity is not a JSON number"),
    (b'[{"id": 1},\n {"name": "a\\u0000b"}]',
     "record 2, line 2, column 13: the escape \\u0000 (a NUL character), which PostgreSQL's jsonb cannot "
     "store; remove it or replace it in the source"),
    (b'[{"id": 1}, {"name": "\\ud83d!"}]',
     "record 2, line 1, column 23: the escape \\ud83d, a high surrogate not followed by a low one, "
     "which PostgreSQL's jsonb refuses"),
    (b'[{"name": "\\uDE97"}]',
     "record 1, line 1, column 12: the escape \\uDE97, a low surrogate without the high one before it"),
    (b'[{"id": 1}, {"name": "\\ud83d\\\\ude97"}]', "record 2, line 1, column 23: the escape \\ud83d, a high"),
    (b'[{"id": 1}, {"name": "\\\\\\ude97"}]', "record 2, line 1, column 25: the escape \\ude97, a low"),
    (b'[{"id": 1},\n {"name": "caf\xe9"}]',
     "record 2, line 2, column 15: not valid UTF-8 at byte offset 26 (byte 0xe9); save the file as UTF-8"),
    (b'[{"id": 1}, {"id": 2}, {"name": "\xe2\x82"}]', "record 3, line 1, column 34: not valid UTF-8 at byte offset 33"),
    (b'[{"id": 1}, ' + DEEP + b"]",
     "record 2, line 1, column 13: nested deeper than 100 levels of objects and arrays, the limit for a "
     "record; flatten the record"),
    (b'[{"id": 1}, {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]",
     "record 2, line 1, column 13: nested deeper than 100 levels"),
    (b'[{"id": 1}]\n\xff', "after the last record, line 2, column 1: not valid UTF-8 at byte offset 12"),
])
def test_values_the_warehouse_refuses_are_named_by_file_record_and_position(
    tmp_path: Path, content: bytes, message: str, chunk_size: int
) -> None:
    assert _refused(tmp_path, content, chunk_size).startswith(message)


@pytest.mark.parametrize("chunk_size", [3, 1 << 20])
def test_what_only_looks_like_a_refused_value_is_read(tmp_path: Path, chunk_size: int) -> None:
    records = [
        {"text": "NaN, Infinity and -Infinity are words here", "NaN": "Infinity"},
        {"text": "a backslash then u0000: \\u0000, and \\ud800 as letters"},
        {"emoji": "\U0001f697 caf\u00e9 \u00fcber", "null": None},  # a surrogate pair once ASCII-escaped
        {"deep": json.loads('{"a": ' * 98 + "[1]" + "}" * 98)},  # 100 levels: the limit, allowed
        {"many": [[i] for i in range(500)]},  # many brackets, shallow
    ]
    path = tmp_path / "v.json"
    path.write_text(json.dumps(records))  # ensure_ascii: every non-ASCII character as a \u escape
    assert list(read_records(path, chunk_size=chunk_size)) == records
    assert [json.loads(r) for r in read_raw_records(path, chunk_size=chunk_size)] == records


def test_the_escape_check_agrees_with_python_on_random_strings(tmp_path: Path) -> None:
    """Python's decoder keeps a lone surrogate or NUL as a character in the string it returns: a record
    is refused exactly when its decoded text holds one."""
    rng = random.Random(7)
    pieces = ["a", "\\\\", "\\u0000", "\\u0041", "\\ud83d", "\\ude97", "\\uD800", "\\uDFFF", "\\n", "u", "d83d"]
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        path = tmp_path / "v.json"
        path.write_text(f'[{{"id": 1}}, {{"s": "{text}"}}]')
        decoded = json.loads(f'"{text}"')
        bad = "\x00" in decoded or any(0xD800 <= ord(c) <= 0xDFFF for c in decoded)
        if bad:
            with pytest.raises(SourceError, match=r"record 2, line 1, column \d+: the escape"):
                list(read_raw_records(path, chunk_size=5))
        else:
            assert [json.loads(r) for r in read_raw_records(path, chunk_size=5)] == [{"id": 1}, {"s": decoded}]
