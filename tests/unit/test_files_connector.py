"""The `files` system type on real files on disk: its connection model (and how `validate` reports it), the
readers (CSV, JSON lines, JSON array, Parquet; each plain and gzipped) with the exact text each record
lands as, the errors that fail a batch naming endpoint, file and line, and the cursor rule (which files a
run reads)."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from ingestion.connectors import CursorReached, PendingLoad, connector_for
from ingestion.connectors.file_readers import SourceError
from ingestion.connectors.files import cursor_value, parse_cursor
from metadata.catalog import MetadataError, load_catalog
from metadata.models import FilesConnection, parse_connection
from secret_store.env import EnvSecretStore

NS = 1_000_000_000
BASE = 1_767_225_600  # 2026-01-01T00:00:00Z: file times are set, never left to the clock


def connection(endpoints: dict[str, Any], **extra: Any) -> FilesConnection:
    result = parse_connection("files", {"path": "drops", "endpoints": endpoints, "settle_seconds": 0, **extra})
    assert isinstance(result, FilesConnection)
    return result


def drop(root: Path, name: str, data: bytes, *, at: float, gz: bool = False) -> Path:
    """A file dropped with modification time BASE + `at` seconds."""
    path = root / "drops" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    os.utime(path, ns=(int((BASE + at) * NS), int((BASE + at) * NS)))
    return path


def read(conn: FilesConnection, endpoint: str, root: Path, *, cursors: dict[str, str] | None = None,
         timestamp: dt.datetime | None = None) -> tuple[list[str], dict[str, str]]:
    load = PendingLoad("2027-01-01T00:00:00.000000Z", timestamp or dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
                       cursors or {})
    reached = CursorReached()
    records = list(connector_for("files").raw_records(conn, endpoint, load, base_dir=root, reached=reached))
    return records, reached.values


def one_file(tmp_path: Path, endpoint: dict[str, Any], name: str, data: bytes, *, gz: bool = False) -> list[str]:
    drop(tmp_path, name + (".gz" if gz else ""), data, at=0, gz=gz)
    return read(connection({"e": endpoint}), "e", tmp_path)[0]


# --- the connection model and validate ------------------------------------------------------------

def test_a_files_connection_with_defaults() -> None:
    conn = parse_connection("files", {"path": "drops", "endpoints": {
        "orders": {"glob": "orders/*.csv", "format": "csv", "csv": {"delimiter": ";", "encoding": "cp1252"}},
        "events": {"glob": "**/*.jsonl.gz", "format": "jsonl", "load": "full"}}})
    assert isinstance(conn, FilesConnection)
    orders, events = conn.endpoints["orders"], conn.endpoints["events"]
    assert (orders.load, orders.compression, orders.csv_options().quote_char) == ("new_files", "infer", '"')
    assert (orders.csv_options().delimiter, orders.csv_options().encoding) == (";", "cp1252")
    assert (events.load, events.csv, conn.settle_seconds) == ("full", None, 2.0)


@pytest.mark.parametrize("glob, why", [
    ("/data/*.csv", "is an absolute path"),
    ("../other/*.csv", "'..' as a folder"),
    ("a//b.csv", "empty folder name"),
    ("orders/", "empty folder name"),
    ("data/[0-9.csv", "opens a '[' character class that no ']' closes"),
    ("data/x**.csv", "'**' must be a whole segment"),
    ("data/**", "ends with '**'"),
    ("s3://bucket/*.csv", "is a URL"),
    ("data\\*.csv", "backslash"),
    ("", "is empty"),
])
def test_a_glob_that_is_not_a_glob_of_files_is_refused_saying_why(glob: str, why: str) -> None:
    with pytest.raises(ValidationError) as error:
        connection({"e": {"glob": glob, "format": "csv"}})
    assert "not a glob of files: " in str(error.value) and why in str(error.value)


def test_validate_names_file_object_and_field_of_each_problem(folder: Path, store: EnvSecretStore) -> None:
    systems = json.loads((folder / "systems.json").read_text())
    systems["systems"].append({"id": "FIL01", "name": "Drops", "description": "d", "type": "files", "connection": {
        "path": {"type": "secret", "key": "drops_path"}, "endpoints": {
            "orders": {"glob": "../*.csv", "format": "csv", "csv": {"encoding": "utf-16"}},
            "events": {"glob": "*.jsonl", "format": "jsonl", "csv": {"delimiter": ";"}},
            "items": {"glob": "*.parquet", "format": "xlsx", "compresion": "gzip"}}}})
    (folder / "systems.json").write_text(json.dumps(systems))
    with pytest.raises(MetadataError) as error:
        load_catalog(folder, secrets=store)
    found = {(p.file, p.object, p.field): p.message for p in error.value.problems}
    assert "not a glob of files" in found[("systems.json", "system FIL01", "connection.endpoints.orders.glob")]
    assert "UTF-16" in found[("systems.json", "system FIL01", "connection.endpoints.orders.csv.encoding")]
    assert "'csv' options are given but the format is 'jsonl'" in found[
        ("systems.json", "system FIL01", "connection.endpoints.events")]
    assert "'csv', 'jsonl', 'json' or 'parquet'" in found[
        ("systems.json", "system FIL01", "connection.endpoints.items.format")]
    assert "Extra inputs are not permitted" in found[
        ("systems.json", "system FIL01", "connection.endpoints.items.compresion")]
    assert "secret 'drops_path' is missing" in found[("systems.json", "system FIL01", "connection")]


# --- readers: what each record lands as --------------------------------------------------------------

CSV = ('id;name;note;amount\r\n'
       '007;"Smith; John";"said ""hi""";1.50\r\n'
       '\r\n'
       '8;"two\r\nlines";;\r\n'
       '9;Zoë;"a\nb";-0\r\n').encode()


@pytest.mark.parametrize("gz", [False, True])
def test_csv_fields_land_as_strings_exactly_as_written(tmp_path: Path, gz: bool) -> None:
    records = one_file(tmp_path, {"glob": "*.csv*", "format": "csv", "csv": {"delimiter": ";"}}, "a.csv", CSV, gz=gz)
    assert [json.loads(r) for r in records] == [
        {"id": "007", "name": "Smith; John", "note": 'said "hi"', "amount": "1.50"},
        {"id": "8", "name": "two\r\nlines", "note": "", "amount": ""},
        {"id": "9", "name": "Zoë", "note": "a\nb", "amount": "-0"},
    ]


@pytest.mark.parametrize("gz", [False, True])
def test_csv_with_a_byte_order_mark_and_csv_in_a_declared_encoding(tmp_path: Path, gz: bool) -> None:
    bom = one_file(tmp_path / "bom", {"glob": "*", "format": "csv"}, "b.csv", b"\xef\xbb\xbfid,city\n1,K\xc3\xb6ln\n",
                   gz=gz)
    assert [json.loads(r) for r in bom] == [{"id": "1", "city": "Köln"}]  # the BOM is not part of the first name
    text = "id,name,price\n1,Müller,5 €\n2,Œuvre,‰\n"
    cp1252 = one_file(tmp_path / "cp", {"glob": "*", "format": "csv", "csv": {"encoding": "cp1252"}}, "c.csv",
                      text.encode("cp1252"), gz=gz)
    assert [json.loads(r) for r in cp1252] == [{"id": "1", "name": "Müller", "price": "5 €"},
                                               {"id": "2", "name": "Œuvre", "price": "‰"}]
    latin1 = one_file(tmp_path / "l1", {"glob": "*", "format": "csv", "csv": {"encoding": "latin-1"}}, "l.csv",
                      "k\nÿ\n".encode("latin-1"), gz=gz)
    assert [json.loads(r) for r in latin1] == [{"k": "ÿ"}]


JSONL = b'{"id": 1, "amount": 1.50, "tags": ["a"]}\n\n  {"id":2,"nested":{"x":null}}  \r\n{"id": 3, "s": "\\u00e9"}'


@pytest.mark.parametrize("gz", [False, True])
def test_json_lines_land_as_each_line_s_text(tmp_path: Path, gz: bool) -> None:
    records = one_file(tmp_path, {"glob": "*", "format": "jsonl"}, "a.jsonl", JSONL, gz=gz)
    assert records == ['{"id": 1, "amount": 1.50, "tags": ["a"]}', '{"id":2,"nested":{"x":null}}',
                       '{"id": 3, "s": "\\u00e9"}']


@pytest.mark.parametrize("gz", [False, True])
def test_a_json_array_lands_as_each_object_s_text(tmp_path: Path, gz: bool) -> None:
    data = b'[\n {"id": 1, "amount": 1.50},\n {"id":2, "list": [1, {"a": "b"}]}\n]\n'
    records = one_file(tmp_path, {"glob": "*", "format": "json"}, "a.json", data, gz=gz)
    assert records == ['{"id": 1, "amount": 1.50}', '{"id":2, "list": [1, {"a": "b"}]}']


def _parquet_bytes(tmp_path: Path) -> bytes:
    table = pa.table({
        "id": pa.array([1, 2], pa.int64()),
        "name": pa.array(["Zoë", None]),
        "ratio": pa.array([0.1, float("nan")], pa.float64()),
        "ok": pa.array([True, False]),
        "at": pa.array([1_767_225_600_123_456_789, 0], pa.timestamp("ns", tz="UTC")),
        "local": pa.array([dt.datetime(2026, 1, 1, 8, 30, 0, 5), None], pa.timestamp("us")),
        "day": pa.array([dt.date(2026, 1, 2), dt.date(1999, 12, 31)]),
        "price": pa.array([decimal.Decimal("1.50"), decimal.Decimal("-0.01")], pa.decimal128(10, 2)),
        "raw": pa.array([b"\x00\x01", None], pa.binary()),
        "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
        "owner": pa.array([{"id": 7, "since": dt.date(2020, 5, 1)}, None],
                          pa.struct([("id", pa.int32()), ("since", pa.date32())])),
    })
    path = tmp_path / "tmp.parquet"
    pq.write_table(table, path, row_group_size=1)
    return path.read_bytes()


@pytest.mark.parametrize("gz", [False, True])
def test_parquet_rows_land_as_json_with_exact_text_for_times_dates_and_decimals(tmp_path: Path, gz: bool) -> None:
    records = one_file(tmp_path, {"glob": "*", "format": "parquet"}, "a.parquet", _parquet_bytes(tmp_path), gz=gz)
    assert [json.loads(r) for r in records] == [
        {"id": 1, "name": "Zoë", "ratio": 0.1, "ok": True, "at": "2026-01-01T00:00:00.123456789+00:00",
         "local": "2026-01-01T08:30:00.000005", "day": "2026-01-02", "price": "1.50", "raw": "AAE=",
         "tags": ["a", "b"], "owner": {"id": 7, "since": "2020-05-01"}},
        {"id": 2, "name": None, "ratio": "NaN", "ok": False, "at": "1970-01-01T00:00:00.000000000+00:00",
         "local": None, "day": "1999-12-31", "price": "-0.01", "raw": None, "tags": [], "owner": None},
    ]


# --- errors that fail the batch ------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("endpoint, data, message", [
    ({"format": "csv"}, b'a,b\n1,"x\ny"\n2,3,4\n', r"file .*a\.x(\.gz)?, line 4: 3 fields, but the header has 2"),
    ({"format": "csv"}, b'a,b\n1,2\n3,"open\n', r"line 3: not valid CSV: unexpected end of data"),
    ({"format": "csv"}, b"a,b\n1,2\n3,M\xfcller\n", r"line 3: byte 0xfc at byte 4 of the line is not valid utf-8"),
    ({"format": "csv", "csv": {"encoding": "cp1252"}}, b"a\n\x81\n", r"line 2: byte 0x81 .* not valid cp1252"),
    ({"format": "csv"}, b"a,a\n1,2\n", r"line 1: the header names the field 'a' twice"),
    ({"format": "jsonl"}, b'{"a": 1}\n\n {"a": 2,}\n', r"line 3: not valid JSON at column 10"),
    ({"format": "jsonl"}, b'{"a": 1}\n[1]\n', r"line 2: is a JSON list, expected an object"),
    ({"format": "jsonl"}, b'{"a": NaN}\n', r"line 1: NaN is not a JSON number"),
    ({"format": "jsonl"}, b' {"a": "\\u0000"}\n', r"line 1, column 9: the escape \\u0000"),
    ({"format": "json"}, b'[{"a": 1},\n {"a": }]', r"not valid JSON at line 2, column 8"),
    ({"format": "parquet"}, b"PAR1 this is not parquet", r"not a readable Parquet file"),
])
def test_a_bad_file_fails_naming_endpoint_file_and_line(tmp_path: Path, endpoint: dict[str, Any], data: bytes,
                                                         message: str, gz: bool) -> None:
    with pytest.raises(SourceError, match=message) as error:
        one_file(tmp_path, {"glob": "a.x*", **endpoint}, "a.x", data, gz=gz)
    assert str(error.value).startswith("endpoint e, file ")


def test_a_file_that_is_not_gzip_but_named_so_fails_naming_it(tmp_path: Path) -> None:
    drop(tmp_path, "a.csv.gz", b"a,b\n1,2\n", at=0)
    with pytest.raises(SourceError, match=r"endpoint e, file .*a\.csv\.gz: not readable as gzip"):
        read(connection({"e": {"glob": "*.gz", "format": "csv"}}), "e", tmp_path)
    drop(tmp_path, "b.csv", gzip.compress(b"a,b\n1,2\n"), at=1)  # declared gzip without the suffix
    assert read(connection({"e": {"glob": "b.csv", "format": "csv", "compression": "gzip"}}), "e",
                tmp_path)[0] == ['{"a":"1","b":"2"}']


# --- the cursor rule --------------------------------------------------------------------------------------

def test_the_cursor_text_orders_by_time_in_ns_then_name_and_reads_back() -> None:
    value = cursor_value((BASE + 5) * NS + 7, "orders/day 1.csv")
    assert value == "2026-01-01T00:00:05.000000007Z orders/day 1.csv"
    assert parse_cursor(value, where="x") == ((BASE + 5) * NS + 7, "orders/day 1.csv")
    with pytest.raises(SourceError, match="endpoint e: the stored cursor 'junk' is not"):
        parse_cursor("junk", where="endpoint e")


def lines(records: list[str]) -> list[str]:
    return [json.loads(r)["v"] for r in records]


def test_new_files_only_after_the_cursor_and_a_rewritten_file_again(tmp_path: Path) -> None:
    conn = connection({"e": {"glob": "**/*.jsonl", "format": "jsonl"}})
    connector = connector_for("files")
    next_load: Callable[[dict[str, str]], PendingLoad | None] = lambda cursors: connector.next_load(  # noqa: E731
        "FIL01", conn, landed=set(), cursors=cursors, base_dir=tmp_path)
    (tmp_path / "drops").mkdir()
    assert next_load({}) is None  # nothing dropped: no batch
    drop(tmp_path, "b.jsonl", b'{"v": "b"}', at=10)
    drop(tmp_path, "a.jsonl", b'{"v": "a"}', at=10)  # same time: the name orders
    drop(tmp_path, "sub/c.jsonl", b'{"v": "c"}', at=5)
    drop(tmp_path, ".hidden.jsonl", b'{"v": "h"}', at=6)  # being written under a hidden name: not listed
    load = next_load({})
    assert load is not None and load.cursors == {}
    records, reached = read(conn, "e", tmp_path)
    assert lines(records) == ["c", "a", "b"]
    assert reached == {"e": cursor_value((BASE + 10) * NS, "b.jsonl")}
    assert next_load(reached) is None  # a re-run with nothing new lands nothing

    drop(tmp_path, "d.jsonl", b'{"v": "d"}', at=20)
    drop(tmp_path, "a.jsonl", b'{"v": "a2"}', at=21)  # rewritten in place: a new modification time
    assert next_load(reached) is not None
    records, second = read(conn, "e", tmp_path, cursors=reached)
    assert lines(records) == ["d", "a2"]
    assert second == {"e": cursor_value((BASE + 21) * NS, "a.jsonl")}

    # A forced re-land of the first batch reads from where it started up to its time: the same files.
    early = dt.datetime.fromtimestamp(BASE + 15, dt.UTC)
    again = connector.find_load("FIL01", conn, early.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), cursors={},
                                base_dir=tmp_path)
    assert again.timestamp == early
    records, _ = read(conn, "e", tmp_path, timestamp=again.timestamp)
    assert lines(records) == ["c", "b"]  # a.jsonl now has a later time: it belongs to the later batch

    # The documented edge: a file dropped with a time older than the cursor is not seen until touched.
    old = drop(tmp_path, "late.jsonl", b'{"v": "late"}', at=1)
    assert next_load(second) is None
    os.utime(old, ns=((BASE + 30) * NS, (BASE + 30) * NS))
    assert lines(read(conn, "e", tmp_path, cursors=second)[0]) == ["late"]


def test_an_endpoint_without_new_files_keeps_its_cursor_as_the_batch_range(tmp_path: Path) -> None:
    conn = connection({"e": {"glob": "*.jsonl", "format": "jsonl"}})
    drop(tmp_path, "a.jsonl", b'{"v": "a"}', at=1)
    start = {"e": cursor_value((BASE + 1) * NS, "a.jsonl")}
    assert read(conn, "e", tmp_path, cursors=start) == ([], start)
    (tmp_path / "other" / "drops").mkdir(parents=True)
    assert read(conn, "e", tmp_path / "other") == ([], {})  # nothing read, nothing to record


def test_a_file_younger_than_the_settle_time_waits_for_the_next_run(tmp_path: Path) -> None:
    conn = connection({"e": {"glob": "*.jsonl", "format": "jsonl"}}, settle_seconds=60)
    drop(tmp_path, "old.jsonl", b'{"v": "old"}', at=0)
    drop(tmp_path, "new.jsonl", b'{"v": "new"}', at=100)
    at = dt.datetime.fromtimestamp(BASE + 130, dt.UTC)  # new.jsonl is 30 s old then
    assert lines(read(conn, "e", tmp_path, timestamp=at)[0]) == ["old"]
    assert lines(read(conn, "e", tmp_path, timestamp=at + dt.timedelta(seconds=31))[0]) == ["old", "new"]


def test_a_full_endpoint_reads_every_matching_file_every_run(tmp_path: Path) -> None:
    conn = connection({"e": {"glob": "*.csv", "format": "csv", "load": "full"}})
    drop(tmp_path, "a.csv", b"v\na\n", at=1)
    drop(tmp_path, "b.csv", b"v\nb\n", at=2)
    everything = cursor_value((BASE + 2) * NS, "b.csv")
    records, reached = read(conn, "e", tmp_path, cursors={"e": everything})
    assert lines(records) == ["a", "b"] and reached == {"e": everything}
    assert connector_for("files").next_load("FIL01", conn, landed=set(), cursors=reached,
                                            base_dir=tmp_path) is not None


def test_check_reads_the_newest_file_s_first_record_and_lands_nothing(tmp_path: Path) -> None:
    conn = connection({"good": {"glob": "*.csv", "format": "csv"}, "none": {"glob": "*.parquet", "format": "parquet"},
                       "bad": {"glob": "*.jsonl", "format": "jsonl"}})
    drop(tmp_path, "a.csv", b"v\nbroken,row\n", at=1)
    drop(tmp_path, "b.csv", b"v\nfine\n", at=2)
    drop(tmp_path, "c.jsonl", b"not json\n", at=3)
    checks = {c.endpoint: (c.ok, c.message) for c in connector_for("files").check(  # type: ignore[attr-defined]
        conn, base_dir=tmp_path)}
    folder = tmp_path / "drops"
    assert checks["good"] == (True, f"folder {folder} readable; 2 file(s) match '*.csv'; newest b.csv: its first "
                                    "record read")
    assert checks["none"] == (True, f"folder {folder} readable; no file matches '*.parquet' yet")
    assert checks["bad"][0] is False and "c.jsonl, line 1: not valid JSON" in checks["bad"][1]
    missing = connector_for("files").check(conn, base_dir=tmp_path / "nowhere")  # type: ignore[attr-defined]
    assert {c.ok for c in missing} == {False} and "does not exist" in missing[0].message


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source folder .*drops does not exist"):
        read(connection({"e": {"glob": "*.csv", "format": "csv"}}), "e", tmp_path)


# --- the example the README walks through ------------------------------------------------------------------

def test_the_example_files_system_validates_and_reads_its_drops(folder: Path, store: EnvSecretStore) -> None:
    example = Path(__file__).resolve().parents[2] / "metadata" / "examples" / "files"
    for name, key in (("systems.json", "systems"), ("entities.json", "entities")):
        data = json.loads((folder / name).read_text())
        data[key] += json.loads((example / name).read_text())[key]
        (folder / name).write_text(json.dumps(data))
    catalog = load_catalog(folder, secrets=store)
    system = catalog.systems["SHP01"]
    conn = parse_connection(system.type, system.connection)
    assert isinstance(conn, FilesConnection)
    # The default DATAPLATFORM_HOME is the repository's .dataplatform; any folder beside it resolves the same way.
    home = example.parents[2] / "metadata"
    customers, _ = read(conn, "customers", home)
    orders, reached = read(conn, "orders", home)
    assert [json.loads(r) for r in customers] == [{"customer_id": "007", "name": "Müller; Jürgen", "city": "Köln"},
                                                  {"customer_id": "008", "name": "Ana", "city": ""}]
    assert orders == ['{"order_id": 1, "customer_id": "007", "amount": 12.50}',
                      '{"order_id": 2, "customer_id": "008", "amount": 3}']
    assert reached["orders"].endswith("Z orders/2026-01-01.jsonl.gz")
