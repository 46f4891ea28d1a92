"""The json_files connector reads a delivery's JSON array one record at a time, and names the file,
line and column of anything it cannot read (the same position Python's json module reports)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ingestion.connectors.json_files import SourceError, deliveries, read_records

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
