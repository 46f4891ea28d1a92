"""The one definition of "JSON path -> SQL" (`metadata.columns.json_path_literal`), which the quality
gate and dbt's bronze macros both read paths with, checked on a real PostgreSQL: for a record built in
Python with awkward keys, extracting the path gives the value back."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from metadata.columns import Column, json_path_literal

AWKWARD_KEYS = [
    "plain",
    "a,b",
    "with space",
    " padded ",
    "c'd",
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "{brace}",
    "}",
    "100%",
    "NULL",
    "",
    "ünïcødé ✓ 車",
]


@pytest.fixture(scope="module")
def conn(warehouse: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse, autocommit=True) as connection:
        yield connection


def nest(path: tuple[str, ...], value: object) -> object:
    """The record that holds `value` at `path`."""
    for key in reversed(path):
        value = {key: value}
    return value


def extract(conn: psycopg.Connection, record: object, path: tuple[str, ...], operator: str) -> object:
    """`'<record>'::jsonb <operator> <path literal>`, all inline (no parameters) as in generated SQL."""
    query = sql.SQL("select {}::jsonb {} {}").format(
        sql.Literal(json.dumps(record)), sql.SQL(operator), sql.SQL(json_path_literal(path))
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("key", AWKWARD_KEYS, ids=repr)
def test_a_key_reads_back_its_value(conn: psycopg.Connection, key: str) -> None:
    path = ("outer", key, "inner")
    record = nest(path, {"n": 1})
    assert extract(conn, record, path, "#>") == {"n": 1}
    assert extract(conn, nest(path, "text"), path, "#>>") == "text"


def test_a_path_of_every_awkward_key_reads_back_its_value(conn: psycopg.Connection) -> None:
    path = tuple(AWKWARD_KEYS)
    assert extract(conn, nest(path, [1, "two"]), path, "#>") == [1, "two"]


def test_a_path_that_is_not_there_reads_as_null(conn: psycopg.Connection) -> None:
    assert extract(conn, {"a,b": 1}, ("a", "b"), "#>") is None
    assert extract(conn, {"a": {"b": 1}}, ("a,b",), "#>") is None


def test_backslashes_read_the_same_without_standard_conforming_strings(conn: psycopg.Connection) -> None:
    path = ("back\\slash", "c'd\\")
    conn.execute("set standard_conforming_strings = off")
    try:
        assert extract(conn, nest(path, 7), path, "#>") == 7
    finally:
        conn.execute("set standard_conforming_strings = on")


def test_bronze_gets_the_same_literal_through_the_generated_model() -> None:
    column = Column("c_d", "text", ("a,b", "c'd"), "record", False, 2, True)
    assert column.macro_args()["path_sql"] == json_path_literal(("a,b", "c'd")) == """'{"a,b","c''d"}'"""
