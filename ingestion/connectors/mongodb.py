"""Connector for `mongodb` systems: a collection per endpoint, read with pymongo (dlt has no MongoDB source).

Each document lands as MongoDB Extended JSON in relaxed mode (`bson.json_util`, `RELAXED_JSON_OPTIONS`), so
what JSON has no type for survives as a tagged object: an ObjectId is `{"$oid": "..."}`, a date
`{"$date": "2026-01-01T00:00:00.123Z"}`, a Decimal128 `{"$numberDecimal": "1.50"}`, binary
`{"$binary": {"base64": ..., "subType": "00"}}`; strings, booleans, ints and finite doubles are plain JSON.

Reading streams: one `find` cursor with the endpoint's `batch_size`, so memory holds one server batch,
never the collection. A full endpoint is sorted by `_id`, a delta endpoint by (`cursor_field`, `_id`): a
read broken by a transient error (lost connection, network timeout, no server selectable) resumes after
the documents already read, by skipping them in that order, after a backoff.

The cursor (delta): `audit.cursor` holds the relaxed Extended JSON text of the largest `cursor_field` value
landed, which reads back as the same BSON value (a date stays a date, an ObjectId an ObjectId), so the next
batch asks `{cursor_field: {"$gte": <that value>}}` (merged with the declared filter by `$and`): documents
equal to the stored cursor are read again (silver sees them unchanged), none is lost at the boundary.
MongoDB compares within a type bracket, so documents whose field holds another type than the cursor's are
never read by a delta endpoint: give the field one type. A collection that does not exist is an error
(MongoDB would answer a find on it with nothing): a typo must not look like an empty source.

Run on its own to see what a collection gives: `python -m ingestion.connectors.mongodb URL DATABASE COLLECTION`.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import pymongo
import pymongo.errors
from bson import json_util

from ingestion.connectors.base import CursorReached, EndpointCheck, PendingLoad, load_at_run_time, load_named
from metadata.models import (
    MONGO_JSON,
    Connection,
    MongoDbConnection,
    MongoEndpoint,
    extended_json_value,
    mongo_cursor_text,
)
from secret_store.redact import redact, remember_secret

# Worth another attempt: the connection was lost or timed out, or no server could be selected (yet).
TRANSIENT = (pymongo.errors.AutoReconnect, pymongo.errors.WaitQueueTimeoutError)
_AUTH_CODES = {18, 13}  # AuthenticationFailed, Unauthorized


class MongoDbError(RuntimeError):
    """The source cannot give the endpoint's documents; the message names the endpoint and collection, never
    the URL's credentials."""


def _where(connection: MongoDbConnection, endpoint: str) -> str:
    spec = connection.endpoints[endpoint]
    return f"mongodb endpoint {endpoint} (collection {spec.collection!r} of database {connection.database!r})"


def _client(connection: MongoDbConnection) -> pymongo.MongoClient[dict[str, Any]]:
    """A client for the system's URL; the URL's password is a secret from now on (also on its own)."""
    url = str(connection.url)
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        remember_secret(unquote(password))
    timeout_ms = int(connection.retry.timeout * 1000)
    try:
        # uuidRepresentation 'unspecified' (pymongo's default, whatever the URL says): a UUID stays binary subtype
        # 4, which lands as {"$binary": {..., "subType": "04"}} (a uuid.UUID object would be written as bare text).
        return pymongo.MongoClient(url, tz_aware=True, tzinfo=dt.UTC, appname="dataplatform", connect=False,
                                   serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                   socketTimeoutMS=timeout_ms, uuidRepresentation="unspecified")
    except pymongo.errors.PyMongoError as err:
        raise MongoDbError(f"mongodb: the URL (secret 'url') is not usable: {redact(str(err))}") from None


def _failure(connection: MongoDbConnection, endpoint: str, err: Exception, attempts: int) -> MongoDbError:
    """A terminal error, in words: what failed, where, and what to do (no credentials)."""
    where = _where(connection, endpoint)
    if isinstance(err, TRANSIENT):
        return MongoDbError(f"{where}: no answer from the server after {attempts} attempt(s) ({type(err).__name__}: "
                            f"{redact(str(err))[:300]}); check that it is up and the secret 'url' is right, or "
                            "raise the system's 'retry' limits")
    if isinstance(err, pymongo.errors.OperationFailure) and err.code in _AUTH_CODES:
        return MongoDbError(f"{where}: the server refused the credentials or their rights (code {err.code}: "
                            f"{redact(str(err.details.get('errmsg', '') if err.details else ''))}); check the "
                            "user and password in the secret 'url' and the user's read role on the database")
    if isinstance(err, pymongo.errors.ConfigurationError):
        return MongoDbError(f"{where}: the URL (secret 'url') is not usable: {redact(str(err))}")
    return MongoDbError(f"{where}: {type(err).__name__}: {redact(str(err))}")


def _credentials(connection: MongoDbConnection) -> str:
    try:
        user = urlsplit(str(connection.url)).username
    except ValueError:
        user = None
    return "credentials accepted" if user else "no credentials in the URL"


def _backoff(connection: MongoDbConnection, attempt: int) -> None:
    limits = connection.retry
    time.sleep(min(limits.backoff_factor * 2 ** attempt, limits.max_delay) + random.uniform(0, limits.jitter))


def _require_collection(db: Any, connection: MongoDbConnection, endpoint: str) -> None:
    name = connection.endpoints[endpoint].collection
    if name not in db.list_collection_names(filter={"name": name}):
        raise MongoDbError(f"{_where(connection, endpoint)}: the collection does not exist (MongoDB would answer "
                           "with no documents); check the endpoint's 'collection' and the system's 'database'")


def _query(spec: MongoEndpoint, start: Any, has_start: bool) -> dict[str, Any]:
    declared = extended_json_value(spec.filter) if spec.filter else {}
    if spec.load != "delta" or not has_start:
        return declared
    condition = {spec.cursor_field: {"$gte": start}}
    return {"$and": [declared, condition]} if declared else condition


def _projection(spec: MongoEndpoint) -> dict[str, Any] | None:
    if not spec.projection:
        return None
    return extended_json_value(spec.projection)  # type: ignore[no-any-return]


def _value_at(document: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _larger(value: Any, best: Any) -> bool:
    """Whether `value` is past `best`; values of types Python cannot order follow the server's sort."""
    try:
        return bool(value > best)
    except TypeError:
        return True


def _bson_default(value: Any) -> Any:
    if isinstance(value, Mapping):  # a mapping that is not a dict (SON, a DBRef's document)
        return dict(value)
    return json_util.default(value, json_options=MONGO_JSON)


def encode(document: Mapping[str, Any]) -> str:
    """A document as relaxed Extended JSON text (what lands in `payload`).

    orjson writes the plain JSON values (several times faster than `json_util.dumps`, which converts every
    value in Python) and hands each BSON value (ObjectId, date, Decimal128, binary, ..., and the subclasses
    of str and int: Code, Int64) to `json_util`'s own converter, so every value is written as
    `json_util.dumps` writes it. The one value orjson writes differently is a non-finite double (as null,
    where relaxed Extended JSON has `{"$numberDouble": "NaN"}`): a document whose text holds `null`
    anywhere is therefore written by `json_util.dumps` itself."""
    text = orjson.dumps(document, default=_bson_default,
                        option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS)
    if b"null" in text:
        return json_util.dumps(document, json_options=MONGO_JSON, ensure_ascii=False)
    return text.decode()


def start_value(spec: MongoEndpoint, stored: str | None) -> tuple[bool, Any]:
    """(whether there is one, the BSON value) a delta endpoint reads from: the stored cursor text, else the
    declared initial cursor."""
    text = stored if stored is not None else spec.initial_cursor_text()
    if text is None:
        return False, None
    return True, json_util.loads(text, json_options=MONGO_JSON)


def documents(connection: MongoDbConnection, endpoint: str, *, start: tuple[bool, Any] = (False, None),
              client: pymongo.MongoClient[dict[str, Any]] | None = None) -> Iterator[dict[str, Any]]:
    """The endpoint's documents in order, streamed; transient errors are retried with backoff and the read
    resumes after the documents already given."""
    spec = connection.endpoints[endpoint]
    owned = client is None
    client = client or _client(connection)
    query, projection = _query(spec, start[1], start[0]), _projection(spec)
    by_field = spec.load == "delta" and spec.cursor_field != "_id"
    order = [(spec.cursor_field, 1), ("_id", 1)] if by_field else [("_id", 1)]
    given, attempt, checked = 0, 0, False
    try:
        while True:
            try:
                db = client[connection.database]
                if not checked:
                    _require_collection(db, connection, endpoint)
                    checked = True
                found = db[spec.collection].find(query, projection, sort=order, skip=given,
                                                 batch_size=spec.batch_size)
                for document in found:
                    given += 1
                    attempt = 0
                    yield document
                return
            except TRANSIENT as err:
                attempt += 1
                if attempt >= connection.retry.max_attempts:
                    raise _failure(connection, endpoint, err, attempt) from None
                _backoff(connection, attempt - 1)
            except pymongo.errors.PyMongoError as err:
                raise _failure(connection, endpoint, err, attempt + 1) from None
    finally:
        if owned:
            client.close()


class MongoDbConnector:
    """The `mongodb` connector: each run is a batch that reads every endpoint (a delta endpoint from its cursor)."""

    def next_load(self, system_id: str, connection: Connection, *, landed: set[str], cursors: Mapping[str, str],
                  base_dir: Path) -> PendingLoad:
        """Always a load: only reading tells whether anything is new. Its source ref is the run's UTC timestamp,
        which is also the batch timestamp."""
        assert isinstance(connection, MongoDbConnection)
        return load_at_run_time(landed=landed, cursors=self._delta_cursors(connection, cursors))

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *, cursors: Mapping[str, str],
                  base_dir: Path) -> PendingLoad:
        """The batch `source_ref` again, read from where it started (the collection as it is now)."""
        assert isinstance(connection, MongoDbConnection)
        return load_named(source_ref, self._delta_cursors(connection, cursors))

    @staticmethod
    def _delta_cursors(connection: MongoDbConnection, cursors: Mapping[str, str]) -> dict[str, str]:
        delta = {e for e, spec in connection.endpoints.items() if spec.load == "delta"}
        return {e: v for e, v in cursors.items() if e in delta}

    def raw_records(self, connection: Connection, endpoint: str, load: PendingLoad, *, base_dir: Path,
                    reached: CursorReached) -> Iterator[str]:
        """The endpoint's documents as relaxed Extended JSON; a delta endpoint's largest cursor value goes to
        `reached` as its Extended JSON text."""
        assert isinstance(connection, MongoDbConnection)
        spec = connection.endpoints[endpoint]
        delta = spec.load == "delta"
        stored = load.cursors.get(endpoint) if delta else None
        start = start_value(spec, stored) if delta else (False, None)
        if stored is not None:
            reached.advance(endpoint, stored)  # nothing newer read: the endpoint stays where it was
        best: tuple[bool, Any] = (False, None)
        for number, document in enumerate(documents(connection, endpoint, start=start), start=1):
            text = encode(document)
            if "\\u0000" in text:
                raise MongoDbError(f"{_where(connection, endpoint)}: document {number} holds a NUL character "
                                   "(\\u0000), which PostgreSQL's jsonb cannot store")
            if delta:
                assert spec.cursor_field is not None
                present, value = _value_at(document, spec.cursor_field)
                if present and value is not None and (not best[0] or _larger(value, best[1])):
                    best = (True, value)
            yield text
        if best[0]:
            reached.advance(endpoint, mongo_cursor_text(best[1]))

    def check(self, connection: Connection, *, base_dir: Path) -> list[EndpointCheck]:
        """Per endpoint: the server answers a ping, accepts the credentials, the collection exists and its
        first matching document can be read; nothing is landed."""
        assert isinstance(connection, MongoDbConnection)
        results = []
        try:
            client = _client(connection)
        except MongoDbError as err:
            return [EndpointCheck(e, False, redact(str(err))) for e in connection.endpoints]
        with client:
            for endpoint, spec in connection.endpoints.items():
                try:
                    client.admin.command("ping")
                    db = client[connection.database]
                    _require_collection(db, connection, endpoint)
                    has_start, start = start_value(spec, None)
                    first = db[spec.collection].find_one(_query(spec, start, has_start), _projection(spec))
                except MongoDbError as err:
                    results.append(EndpointCheck(endpoint, False, redact(str(err))))
                    continue
                except pymongo.errors.PyMongoError as err:
                    results.append(EndpointCheck(endpoint, False, redact(str(_failure(connection, endpoint, err, 1)))))
                    continue
                what = "a first matching document read" if first is not None else "no document matches yet"
                results.append(EndpointCheck(endpoint, True, f"answers, {_credentials(connection)}, collection "
                                                             f"{spec.collection!r} exists; {what}"))
        return results


if __name__ == "__main__":
    source = MongoDbConnection.model_validate(
        {"type": "mongodb", "url": sys.argv[1], "database": sys.argv[2],
         "endpoints": {"endpoint": {"collection": sys.argv[3]}}}, context={"resolved": True})
    for raw in MongoDbConnector().raw_records(source, "endpoint", PendingLoad("now", dt.datetime.now(dt.UTC)),
                                              base_dir=Path("."), reached=CursorReached()):
        print(raw)
