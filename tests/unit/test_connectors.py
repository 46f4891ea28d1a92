"""The connector seam: a system's connection is validated by its type, and landing gets the connector
of that type from the registry (json_files is the first entry)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ingestion.connectors import CONNECTORS, CursorReached, PendingLoad, connector_for
from ingestion.connectors.json_files import SourceError
from metadata.models import CONNECTION_MODELS, JsonFilesConnection, parse_connection


def test_every_connection_type_has_a_connector_and_no_connector_lacks_a_type() -> None:
    assert set(CONNECTORS) == set(CONNECTION_MODELS) == {"json_files", "files", "rest_api", "mongodb", "sql_database"}


def test_an_unknown_type_is_named_with_the_known_ones() -> None:
    known = "files, json_files, mongodb, rest_api, sql_database"
    with pytest.raises(ValueError, match=f"no connector for system type 'ftp'; known types: {known}"):
        connector_for("ftp")


def test_the_connection_is_parsed_by_the_system_type() -> None:
    connection = parse_connection("json_files", {"path": "deliveries", "endpoints": {"owners": "owners.json"}})
    assert isinstance(connection, JsonFilesConnection)
    assert connection.endpoints == {"owners": "owners.json"}
    with pytest.raises(ValidationError) as error:
        parse_connection("json_files", {"path": "deliveries", "endpoints": {}, "pth": "x"})
    assert {e["loc"][1:] for e in error.value.errors()} == {("endpoints",), ("pth",)}


def _deliver(root: Path, name: str, records: list[dict[str, object]]) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "owners.json").write_text(json.dumps(records))


def test_json_files_connector_picks_the_oldest_delivery_not_landed_and_reads_it(tmp_path: Path) -> None:
    _deliver(tmp_path / "src", "2026-01-02", [{"id": 2}])
    _deliver(tmp_path / "src", "2026-01-01", [{"id": 1}, {"id": 11}])
    connector = connector_for("json_files")
    connection = parse_connection("json_files", {"path": "src", "endpoints": {"owners": "owners.json"}})

    first = connector.next_load("TST01", connection, landed=set(), cursors={}, base_dir=tmp_path)
    assert first == PendingLoad("2026-01-01", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    reached = CursorReached()
    assert [json.loads(r) for r in connector.raw_records(connection, "owners", first, base_dir=tmp_path,
                                                         reached=reached)] == [{"id": 1}, {"id": 11}]
    assert reached.values == {"deliveries": "2026-01-01"}  # the system's one cursor: the last delivery landed
    cursors = {"deliveries": "2026-01-01"}
    assert connector.next_load("TST01", connection, landed={"2026-01-01"}, cursors=cursors,
                               base_dir=tmp_path).source_ref == "2026-01-02"
    assert connector.next_load("TST01", connection, landed={"2026-01-01", "2026-01-02"}, cursors=cursors,
                               base_dir=tmp_path) is None
    assert connector.find_load("TST01", connection, "2026-01-02", cursors={},
                               base_dir=tmp_path).source_ref == "2026-01-02"
    with pytest.raises(SourceError, match="system TST01: delivery '2026-01-09' is no longer in the source folder"):
        connector.find_load("TST01", connection, "2026-01-09", cursors={}, base_dir=tmp_path)


def test_cursor_reached_keeps_the_value_given_last_per_endpoint() -> None:
    reached = CursorReached()
    reached.advance("a", "2")
    reached.advance("b", "x")
    reached.advance("a", "1")
    assert reached.values == {"a": "1", "b": "x"}


def test_json_files_check_tells_whether_the_folder_is_there_and_what_it_holds(tmp_path: Path) -> None:
    _deliver(tmp_path / "src", "2026-01-01", [{"id": 1}])
    (tmp_path / "src" / "2026-01-02").mkdir()
    connector = connector_for("json_files")
    connection = parse_connection("json_files", {"path": "src", "endpoints": {"owners": "owners.json",
                                                                              "cars": "cars.json"}})
    checks = connector.check(connection, base_dir=tmp_path)  # type: ignore[attr-defined]
    assert [(c.endpoint, c.ok, c.message) for c in checks] == [
        ("owners", True, f"folder {tmp_path / 'src'} readable; 2 deliveries, 1 of them with owners.json"),
        ("cars", True, f"folder {tmp_path / 'src'} readable; 2 deliveries, 0 of them with cars.json"),
    ]
    missing = connector.check(connection, base_dir=tmp_path / "nowhere")  # type: ignore[attr-defined]
    assert [(c.endpoint, c.ok) for c in missing] == [("owners", False), ("cars", False)]
    assert missing[0].message == (f"source folder {tmp_path / 'nowhere' / 'src'} does not exist; create it or fix "
                                  "'connection.path' in systems.json")


def test_a_connector_module_is_imported_when_its_type_is_first_asked_for() -> None:
    import subprocess
    import sys

    code = ("import sys, ingestion.connectors as c; before = 'ingestion.connectors.sql_database' in sys.modules;"
            " c.connector_for('sql_database'); print(before, 'ingestion.connectors.sql_database' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["False", "True"]
