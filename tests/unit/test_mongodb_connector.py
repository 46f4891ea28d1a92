"""The mongodb connector over a real socket: against NX-27017 (a MongoDB wire-protocol server on SQLite, started
on loopback by tests/mongo_wire_server.py) or a real MongoDB when DATAPLATFORM_TEST_MONGODB_URL is set.

Documents land as relaxed Extended JSON (ObjectId, date, binary, Int64; Decimal128 against a real MongoDB only:
NX-27017 cannot store it), a full endpoint in `_id` order with its filter and projection, a delta endpoint by a
date field and by `_id` from the stored cursor (the boundary document read again, the cursor advanced to the
largest value as Extended JSON text), reading streams in server batches of `batch_size`, a missing collection
and an unreachable server fail naming the endpoint and collection, and `check` says per endpoint what answers,
never a secret.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymongo
import pymongo.monitoring
import pytest
from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp, json_util
from mongo_wire_server import URL_ENV, fresh_database, mongodb_server

from cli.main import EXIT_FAILED, EXIT_OK, main
from ingestion.connectors import connector_for
from ingestion.connectors.base import CursorReached, PendingLoad
from ingestion.connectors.mongodb import MongoDbError, documents, encode
from metadata.models import MongoDbConnection, parse_connection
from secret_store.redact import remember_secret

UTC = dt.UTC
DAY1 = dt.datetime(2026, 1, 1, tzinfo=UTC)
NOW = PendingLoad("2026-01-05T00:00:00Z", dt.datetime(2026, 1, 5, tzinfo=UTC))
REAL_MONGODB = bool(os.environ.get(URL_ENV))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongodb_server(tmp_path_factory.mktemp("mongodb")) as url:
        yield url


@pytest.fixture
def url(server: str) -> Iterator[str]:
    with fresh_database(server) as database_url:
        yield database_url


def _db(url: str) -> Any:
    return pymongo.MongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000).get_default_database()


def _connection(url: str, endpoints: dict[str, Any], **retry: Any) -> MongoDbConnection:
    parts = urlsplit(url)
    server_url = f"{parts.scheme}://{parts.netloc}/"
    connection = parse_connection("mongodb", {
        "url": server_url, "database": parts.path.strip("/"), "endpoints": endpoints,
        "retry": {"max_attempts": 3, "backoff_factor": 0, "jitter": 0, "timeout": 5, **retry},
    }, resolved=True)
    assert isinstance(connection, MongoDbConnection)
    return connection


def _read(connection: MongoDbConnection, endpoint: str, cursor: str | None = None) -> tuple[list[Any], dict[str, str]]:
    reached = CursorReached()
    load = PendingLoad(NOW.source_ref, NOW.timestamp, {endpoint: cursor} if cursor is not None else {})
    texts = list(connector_for("mongodb").raw_records(connection, endpoint, load, base_dir=Path("."), reached=reached))
    return [json.loads(t) for t in texts], reached.values


def _oid(n: int) -> ObjectId:
    return ObjectId(f"65a1b2c3d4e5f607182930{n:02x}")


def _products(url: str) -> None:
    _db(url).products.insert_many([
        {"_id": _oid(n), "sku": f"P{n}", "stock": n * 10, "active": n != 3, "notes": "internal",
         "updated_at": DAY1 + dt.timedelta(hours=n, milliseconds=n), "big": Int64(2**40 + n),
         "blob": Binary(bytes([n, 0, 255]))}
        for n in (4, 1, 3, 2)])


def test_a_full_endpoint_lands_extended_json_in_id_order_with_filter_and_projection(url: str) -> None:
    _products(url)
    connection = _connection(url, {"products": {"collection": "products", "filter": {"active": True},
                                                "projection": {"notes": 0}, "batch_size": 2}})
    documents, reached = _read(connection, "products")
    assert documents == [
        {"_id": {"$oid": str(_oid(n))}, "sku": f"P{n}", "stock": n * 10, "active": True,
         "updated_at": {"$date": f"2026-01-01T0{n}:00:00.00{n}Z"}, "big": 2**40 + n,
         "blob": {"$binary": {"base64": {1: "AQD/", 2: "AgD/", 4: "BAD/"}[n], "subType": "00"}}}
        for n in (1, 2, 4)]
    assert reached == {}  # a full endpoint has no cursor


def test_a_filter_in_extended_json_compares_dates_as_dates(url: str) -> None:
    _products(url)
    connection = _connection(url, {"products": {
        "collection": "products", "filter": {"updated_at": {"$gte": {"$date": "2026-01-01T02:00:00.002Z"}}},
        "projection": {"sku": 1, "_id": 0}}})
    assert _read(connection, "products")[0] == [{"sku": "P2"}, {"sku": "P3"}, {"sku": "P4"}]


def test_a_delta_endpoint_by_date_reads_from_its_cursor_again_and_advances_as_extended_json(url: str) -> None:
    _products(url)
    connection = _connection(url, {"products": {
        "collection": "products", "load": "delta", "cursor_field": "updated_at",
        "initial_cursor": {"$date": "2026-01-01T02:00:00.002Z"}, "projection": {"sku": 1, "updated_at": 1, "_id": 0}}})
    documents, reached = _read(connection, "products")  # no cursor yet: from the initial one, inclusive
    assert [d["sku"] for d in documents] == ["P2", "P3", "P4"]
    assert reached == {"products": '{"$date": "2026-01-01T04:00:00.004Z"}'}

    # P1 changes after the cursor, P5 arrives; P4 equals the cursor and is read again.
    db = _db(url)
    # replace_one, not $set: NX-27017 stores a date given to $set as text (its limit, not the connector's).
    db.products.replace_one({"sku": "P1"}, {"_id": _oid(1), "sku": "P1", "updated_at": DAY1 + dt.timedelta(days=1)})
    db.products.insert_one({"_id": _oid(5), "sku": "P5", "updated_at": DAY1 + dt.timedelta(hours=5)})
    documents, reached = _read(connection, "products", reached["products"])
    assert documents == [{"sku": "P4", "updated_at": {"$date": "2026-01-01T04:00:00.004Z"}},
                         {"sku": "P5", "updated_at": {"$date": "2026-01-01T05:00:00Z"}},
                         {"sku": "P1", "updated_at": {"$date": "2026-01-02T00:00:00Z"}}]
    assert reached == {"products": '{"$date": "2026-01-02T00:00:00Z"}'}

    # Nothing newer: the boundary document again, the cursor where it was.
    documents, reached = _read(connection, "products", reached["products"])
    assert [d["sku"] for d in documents] == ["P1"]
    assert reached == {"products": '{"$date": "2026-01-02T00:00:00Z"}'}


def test_a_delta_endpoint_by_id_compares_object_ids(url: str) -> None:
    _products(url)
    connection = _connection(url, {"products": {"collection": "products", "load": "delta", "cursor_field": "_id",
                                                "projection": {"sku": 1}}})
    documents, reached = _read(connection, "products")
    assert [d["sku"] for d in documents] == ["P1", "P2", "P3", "P4"]
    assert reached == {"products": json.dumps({"$oid": str(_oid(4))})}
    _db(url).products.insert_one({"_id": _oid(7), "sku": "P7"})
    documents, reached = _read(connection, "products", reached["products"])
    assert documents == [{"_id": {"$oid": str(_oid(4))}, "sku": "P4"}, {"_id": {"$oid": str(_oid(7))}, "sku": "P7"}]
    assert reached == {"products": json.dumps({"$oid": str(_oid(7))})}


class _Commands(pymongo.monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, Any]] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:  # type: ignore[override]
        if event.command_name in ("find", "getMore"):
            self.seen.append((event.command_name, event.command.get("batchSize"), event.command.get("skip")))

    def succeeded(self, event: Any) -> None: ...

    def failed(self, event: Any) -> None: ...


def test_reading_streams_in_server_batches_of_batch_size(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _db(url).items.insert_many([{"n": n} for n in range(7)])
    listener = _Commands()
    real = pymongo.MongoClient
    monkeypatch.setattr(pymongo, "MongoClient", lambda *a, **k: real(*a, event_listeners=[listener], **k))
    connection = _connection(url, {"items": {"collection": "items", "batch_size": 3, "projection": {"_id": 0}}})
    assert _read(connection, "items")[0] == [{"n": n} for n in range(7)]
    assert listener.seen[0][:2] == ("find", 3)
    assert [name for name, _, _ in listener.seen].count("getMore") >= 2  # 7 documents, 3 a batch


def test_a_missing_collection_is_an_error_naming_endpoint_and_collection(url: str) -> None:
    connection = _connection(url, {"orders": {"collection": "ordres"}})
    with pytest.raises(MongoDbError) as err:
        _read(connection, "orders")
    database = urlsplit(url).path.strip("/")
    assert str(err.value) == (f"mongodb endpoint orders (collection 'ordres' of database {database!r}): the "
                              "collection does not exist (MongoDB would answer with no documents); check the "
                              "endpoint's 'collection' and the system's 'database'")


def test_an_unreachable_server_is_retried_then_fails_without_the_password() -> None:
    remember_secret("pw-s3cret")
    connection = parse_connection("mongodb", {
        "url": "mongodb://reader:pw-s3cret@127.0.0.1:9/", "database": "shop",
        "endpoints": {"orders": {"collection": "orders"}},
        "retry": {"max_attempts": 2, "backoff_factor": 0, "jitter": 0, "timeout": 0.3}}, resolved=True)
    assert isinstance(connection, MongoDbConnection)
    with pytest.raises(MongoDbError) as err:
        _read(connection, "orders")
    message = str(err.value)
    assert message.startswith("mongodb endpoint orders (collection 'orders' of database 'shop'): no answer from the "
                              "server after 2 attempt(s) (ServerSelectionTimeoutError: ")
    assert "pw-s3cret" not in message
    [check] = connector_for("mongodb").check(connection, base_dir=Path("."))  # type: ignore[attr-defined]
    assert (check.endpoint, check.ok) == ("orders", False)
    assert "ServerSelectionTimeoutError" in check.message and "pw-s3cret" not in check.message


def test_a_document_with_a_nul_character_fails_the_endpoint(url: str) -> None:
    _db(url).notes.insert_one({"text": "a\x00b"})
    connection = _connection(url, {"notes": {"collection": "notes"}})
    with pytest.raises(MongoDbError, match=r"document 1 holds a NUL character"):
        _read(connection, "notes")


def test_check_says_per_endpoint_what_answers(url: str) -> None:
    _products(url)
    connection = _connection(url, {"products": {"collection": "products", "filter": {"active": True}},
                                   "empty": {"collection": "products", "filter": {"sku": "none"}},
                                   "typo": {"collection": "prodcts"}})
    checks = connector_for("mongodb").check(connection, base_dir=Path("."))  # type: ignore[attr-defined]
    assert [(c.endpoint, c.ok) for c in checks] == [("products", True), ("empty", True), ("typo", False)]
    assert checks[0].message == ("answers, no credentials in the URL, collection 'products' exists; a first matching "
                                 "document read")
    assert checks[1].message.endswith("no document matches yet")
    assert "the collection does not exist" in checks[2].message


def test_decimal128_and_other_bson_types_as_relaxed_extended_json() -> None:
    """The encoding itself (no server: NX-27017 cannot store Decimal128; the next test stores it in a real one)."""
    document = {"_id": _oid(1), "price": Decimal128("1.50"), "at": DAY1, "n": Int64(5), "f": 1.5,
                "nan": float("nan"), "b": Binary(b"\x01"), "s": "é"}
    assert json.loads(encode(document)) == {
        "_id": {"$oid": str(_oid(1))}, "price": {"$numberDecimal": "1.50"}, "at": {"$date": "2026-01-01T00:00:00Z"},
        "n": 5, "f": 1.5, "nan": {"$numberDouble": "NaN"}, "b": {"$binary": {"base64": "AQ==", "subType": "00"}},
        "s": "é"}


def test_the_fast_encoding_writes_every_bson_type_as_json_util_does() -> None:
    """`encode` (orjson plus json_util's converter for BSON values) gives the same JSON as `json_util.dumps` in
    relaxed mode, for every BSON type; a non-finite double (which orjson would write as null) included."""
    documents = [
        {"_id": _oid(1), "d": Decimal128("-0.000100"), "at": dt.datetime(1960, 5, 1, 12, 0, 0, 1000, tzinfo=UTC),
         "late": dt.datetime(9999, 12, 31, tzinfo=UTC), "i64": Int64(-(2**63)), "i": 2**31, "f": -0.0, "big": 1e300,
         "tiny": 5e-324, "b0": Binary(b"\x00\xff"), "b4": Binary(bytes(16), 4), "bytes": b"raw", "t": True,
         "re": Regex("^a.*", "i"), "ts": Timestamp(1_700_000_000, 7), "min": MinKey(), "max": MaxKey(),
         "code": Code("x"), "scoped": Code("y", {"z": _oid(2)}), "ref": DBRef("other", _oid(3), "db"),
         "s": "é \u2028 \"quoted\" \\ \t", "nested": [{"a": [DAY1, {"b": Decimal128("1E+3")}]}, [], {}]},
        {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "none": None},
        {"text": "null is a word"},
    ]
    for document in documents:
        expected = json_util.dumps(document, json_options=json_util.RELAXED_JSON_OPTIONS.with_options(
            tz_aware=True, tzinfo=UTC))
        assert json.loads(encode(document)) == json.loads(expected)


@pytest.mark.skipif(not REAL_MONGODB, reason=f"NX-27017 cannot store Decimal128; set {URL_ENV} to a real MongoDB")
def test_decimal128_lands_exactly_from_a_real_mongodb(url: str) -> None:
    _db(url).prices.insert_one({"_id": _oid(1), "price": Decimal128("1.50")})
    connection = _connection(url, {"prices": {"collection": "prices"}})
    assert _read(connection, "prices")[0] == [{"_id": {"$oid": str(_oid(1))}, "price": {"$numberDecimal": "1.50"}}]


class _CuttableProxy:
    """A loopback TCP proxy in front of the server whose open connections the test can cut (a lost connection
    in the middle of a read, as a network or a failover causes it)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_connection_lost_mid_read_is_retried_and_resumes_after_what_was_read(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _db(url).items.insert_many([{"n": n} for n in range(7)])
    listener = _Commands()
    real = pymongo.MongoClient
    monkeypatch.setattr(pymongo, "MongoClient", lambda *a, **k: real(*a, event_listeners=[listener], **k))
    parts = urlsplit(url)
    proxy = _CuttableProxy(parts.netloc.rsplit("@", 1)[-1])
    try:
        through_proxy = parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl() + "?directConnection=true"
        connection = _connection(through_proxy, {"items": {"collection": "items", "batch_size": 2,
                                                           "projection": {"_id": 0}}})
        read = []
        for document in documents(connection, "items"):
            read.append(document["n"])
            if len(read) == 3:  # the second server batch is being read: the next getMore finds the connection gone
                proxy.cut()
        assert read == list(range(7))  # each once, in order
        # The first find, its getMore cut after the batch in hand (documents 2 and 3), then a find skipping the four.
        assert [(name, skip) for name, _, skip in listener.seen] == [
            ("find", None), ("getMore", None), ("getMore", None), ("find", 4), ("getMore", None)]
    finally:
        proxy.close()


def test_dataplatform_check_on_the_example_system(url: str, folder: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`dataplatform check MDB01` (the example's declarations, pointed at the test's database): per endpoint ok
    or FAILED, exit 1 when one fails, the URL's password nowhere."""
    _products(url)
    example = Path(__file__).resolve().parents[2] / "metadata" / "examples" / "mongodb"
    for name in ("systems", "entities"):
        data = json.loads((folder / f"{name}.json").read_text())
        added = json.loads((example / f"{name}.json").read_text())[name]
        for item in added:
            if "connection" in item:
                item["connection"]["database"] = urlsplit(url).path.strip("/")
                item["connection"]["retry"] = {"max_attempts": 1, "timeout": 2}
        data[name] += added
        (folder / f"{name}.json").write_text(json.dumps(data))
    parts = urlsplit(url)
    monkeypatch.setenv("DATAPLATFORM_METADATA_DIR", str(folder))
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DATAPLATFORM_METADATA_SOURCE", raising=False)
    monkeypatch.setenv("DATAPLATFORM_SECRET_MDB01_URL", f"{parts.scheme}://{parts.netloc}/")
    code = main(["check", "MDB01"])
    output = capsys.readouterr()
    database = parts.path.strip("/")
    assert (code, output.out.splitlines()) == (EXIT_FAILED, [
        "MDB01.products: ok: answers, no credentials in the URL, collection 'products' exists; a first matching "
        "document read",
        f"MDB01.events: FAILED: mongodb endpoint events (collection 'events' of database {database!r}): the collection "
        "does not exist (MongoDB would answer with no documents); check the endpoint's 'collection' and the "
        "system's 'database'"])
    _db(url).events.insert_one({"event_no": 1, "kind": "created"})
    assert main(["check", "MDB01"]) == EXIT_OK
    monkeypatch.setenv("DATAPLATFORM_SECRET_MDB01_URL", "mongodb://reader:pw-0815-secret@127.0.0.1:9/")
    assert main(["check", "MDB01"]) == EXIT_FAILED
    output = capsys.readouterr()
    assert "MDB01.products: FAILED: mongodb endpoint products" in output.out
    assert "pw-0815-secret" not in output.out + output.err
