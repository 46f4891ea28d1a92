"""Change data capture of a PostgreSQL table (`sql_database` endpoint with `"load": "cdc"`).

How it works, per endpoint (names: `cdc_names`):
- a publication for the table (`CREATE PUBLICATION dp_<system>_<endpoint> FOR TABLE ...`, made by the first batch
  if absent; one the DBA made under that name is used as it is, if it covers the table) and a logical replication
  slot of the same name with the built-in `pgoutput` plugin;
- the first batch (no cursor stored) creates the slot over a replication connection with `EXPORT_SNAPSHOT` and
  reads the whole table in that exported snapshot (through sql_database's loader: same chunks, same values): the
  snapshot holds exactly the transactions committed before the slot's consistent point and the slot gives exactly
  those after it, so the snapshot and the changes neither overlap nor leave a gap. Its rows land with `cdc_op` "r"
  and `cdc_lsn` the consistent point, which becomes the endpoint's cursor. A slot of the endpoint found while no
  batch of it has landed (a first run that died) is dropped and made again with a fresh snapshot;
- a later batch reads the changes with `pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version',
  '1', 'publication_names', pub)` (peek: the slot does not move) and decodes them (`pgoutput`); each change lands
  as one record: the row's columns with the values sql_database gives them (`sql_values`), `cdc_op` ("i", "u", "d")
  and `cdc_lsn` (its transaction's commit LSN). A delete carries the replica identity's columns (the primary key; the
  whole old row under REPLICA IDENTITY FULL). An update that changes the primary key lands as a delete of the old
  key followed by the new row. The end of the last commit read becomes the cursor;
- the slot is advanced (`pg_replication_slot_advance`) to the stored cursor only: right after the batch's landing
  has committed (`release`), and again at the start of the next read, in case the run died in between. A run that
  dies after reading changes and before its batch landed leaves the cursor, and so the slot, where they were: the
  next batch reads the same changes again, once.

Type conversion: the text pgoutput sends is read by psycopg's own loaders for the column's type (the session runs
in UTC, ISO dates), JSON with its numbers as Decimal, so a change's values are those a SELECT gives.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Transformer
from psycopg.pq import Format
from psycopg.types.json import set_json_loads
from sqlalchemy.engine import URL

from ingestion.connectors import pgoutput
from ingestion.connectors.sql_database import SqlSourceError
from ingestion.connectors.sql_values import encode_row
from metadata.naming import MAX_IDENTIFIER_BYTES, landing_table

OP, LSN = "cdc_op", "cdc_lsn"  # the fields a CDC record adds to the row's columns (a model may declare them)
SNAPSHOT, INSERT, UPDATE, DELETE = "r", "i", "u", "d"
_SESSION = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres"
_SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f-]+$")
_JSON_LOADS = functools.partial(json.loads, parse_float=Decimal)


class CdcError(SqlSourceError):
    """A CDC read that cannot go on; the message names system, endpoint, table and slot, and what to do."""


def cdc_name(system_id: str, endpoint: str) -> str:
    """The name of an endpoint's replication slot and publication: `dp_<landing table>` (`dp_sql01_orders`), made
    to fit PostgreSQL's 63 bytes by keeping the first 54 and a hash of the whole."""
    name = f"dp_{landing_table(system_id, endpoint)}"
    if len(name) > MAX_IDENTIFIER_BYTES:
        name = f"{name[:54]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def drop_slot_command(system_id: str, endpoint: str) -> str:
    return f"dataplatform cdc drop-slot {system_id} {endpoint}"


@dataclass(frozen=True)
class Where:
    """What a message about one endpoint names."""

    system_id: str
    endpoint: str
    table: str
    slot: str
    server: str

    def __str__(self) -> str:
        return (f"system {self.system_id}, endpoint {self.endpoint}, table {self.table} on {self.server} "
                f"(replication slot {self.slot})")


def connect(url: URL, *, timeout: int, autocommit: bool = True, replication: bool = False) -> psycopg.Connection:
    """A psycopg connection to the source, its session in UTC with ISO dates (what the text values are read in)."""
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    extra: dict[str, Any] = {"replication": "database"} if replication else {}
    conn = psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=timeout, options=_SESSION, **extra)
    if not replication:
        set_json_loads(_JSON_LOADS, conn)
    return conn


# ------------------------------------------------------------------------------------------ the server's side


def wal_level(conn: psycopg.Connection) -> str:
    return str(conn.execute("show wal_level").fetchone()[0])  # type: ignore[index]


def require_logical(conn: psycopg.Connection, where: Where) -> None:
    if (level := wal_level(conn)) != "logical":
        raise CdcError(f"{where}: the server's wal_level is {level!r}, and change data capture needs 'logical'; set "
                       "wal_level = logical in its postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and "
                       "restart it")


def may_replicate(conn: psycopg.Connection) -> bool:
    row = conn.execute("select rolsuper or rolreplication from pg_roles where rolname = current_user").fetchone()
    return bool(row and row[0])


def replication_refused(user: str | None, err: BaseException) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"the server refused a replication connection ({first}); the user needs the REPLICATION attribute "
            f"(ALTER ROLE {user or 'USER'} REPLICATION) and pg_hba.conf a line allowing it (host replication "
            f"{user or 'USER'} ADDRESS scram-sha-256)")


def slot_lsn(conn: psycopg.Connection, slot: str) -> tuple[int, int] | None:
    """The slot's confirmed position and the WAL bytes it keeps the server from removing, or None: no such slot."""
    row = conn.execute(
        "select confirmed_flush_lsn::text, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint"
        " from pg_replication_slots where slot_name = %s", (slot,)).fetchone()
    if row is None:
        return None
    return pgoutput.lsn_number(row[0]) if row[0] else 0, int(row[1])


def ensure_publication(conn: psycopg.Connection, name: str, table: str, where: Where) -> None:
    """The endpoint's publication, covering the table (made when absent; the table's owner may make it)."""
    schema, _, bare = table.rpartition(".")
    schema = schema or str(conn.execute("select current_schema()").fetchone()[0])  # type: ignore[index]
    exists = conn.execute("select 1 from pg_publication where pubname = %s", (name,)).fetchone()
    if exists is None:
        try:
            conn.execute(sql.SQL("create publication {} for table {}").format(
                sql.Identifier(name), sql.Identifier(schema, bare)))
        except psycopg.errors.InsufficientPrivilege:
            raise CdcError(f"{where}: the publication {name} is not there and the user may not create it (only the "
                           f"table's owner can); as its owner run: CREATE PUBLICATION {name} FOR TABLE "
                           f"{schema}.{bare}") from None
        except psycopg.errors.UndefinedTable:
            raise CdcError(f"{where}: the table is not there (or not visible to the user); check the endpoint's "
                           "'table' (schema-qualified)") from None
        return
    covers = conn.execute("select 1 from pg_publication_tables where pubname = %s and schemaname = %s"
                          " and tablename = %s", (name, schema, bare)).fetchone()
    if covers is None:
        raise CdcError(f"{where}: the publication {name} exists but does not publish {schema}.{bare}; run ALTER "
                       f"PUBLICATION {name} ADD TABLE {schema}.{bare} (or drop it: the next run makes it)")


def advance(conn: psycopg.Connection, slot: str, lsn: str) -> bool:
    """Move the slot to `lsn` if it stands before it (the changes before it were landed); whether it moved."""
    state = slot_lsn(conn, slot)
    if state is None or state[0] >= pgoutput.lsn_number(lsn):
        return False
    conn.execute("select pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, lsn))
    return True


def drop(conn: psycopg.Connection, slot: str) -> bool:
    """Drop the slot if it is there (waiting for nobody: a slot in use fails); whether it was there."""
    if conn.execute("select 1 from pg_replication_slots where slot_name = %s", (slot,)).fetchone() is None:
        return False
    conn.execute("select pg_drop_replication_slot(%s)", (slot,))
    return True


@contextlib.contextmanager
def new_slot(url: URL, slot: str, where: Where, *, timeout: int) -> Iterator[tuple[str, str]]:
    """Create the slot over a replication connection with an exported snapshot; yields (consistent point, snapshot
    id). The snapshot can be imported (SET TRANSACTION SNAPSHOT) while the block runs: the connection stays idle."""
    try:
        rep = connect(url, timeout=timeout, replication=True)
    except psycopg.OperationalError as err:
        raise CdcError(f"{where}: {replication_refused(url.username, err)}") from None
    with rep:
        try:
            row = rep.execute(sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT").format(
                sql.Identifier(slot))).fetchone()
        except psycopg.errors.InsufficientPrivilege as err:
            raise CdcError(f"{where}: {replication_refused(url.username, err)}") from None
        assert row is not None
        consistent_point, snapshot = str(row[1]), str(row[2])
        if not _SNAPSHOT_ID.match(snapshot):
            raise CdcError(f"{where}: the server exported a snapshot named {snapshot!r}, which is not a snapshot id")
        yield consistent_point, snapshot


# ------------------------------------------------------------------------------------------ changes as records


@dataclass
class _Table:
    relation: pgoutput.Relation
    loaders: list[Any]
    primary_key: list[int]  # positions of the primary key's columns (the replica identity's, without one)


def primary_key_columns(conn: psycopg.Connection, table: str) -> list[str]:
    """The table's primary key columns (empty: none)."""
    rows = conn.execute(
        "select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)"
        " where i.indrelid = %s::regclass and i.indisprimary order by array_position(i.indkey, a.attnum)",
        (table,)).fetchall()
    return [str(r[0]) for r in rows]


class ChangeReader:
    """Turns the decoded messages of one slot into records (JSON text), in commit order."""

    def __init__(self, conn: psycopg.Connection, where: Where, primary_key: list[str]) -> None:
        self.where, self.primary_key = where, primary_key
        self.transformer = Transformer(conn)
        self.tables: dict[int, _Table] = {}
        self.commit_lsn = ""

    def _table(self, relation: pgoutput.Relation) -> _Table:
        loaders = [self.transformer.get_loader(c.type_oid, Format.TEXT) for c in relation.columns]
        names = [c.name for c in relation.columns]
        for reserved in (OP, LSN):
            if reserved in names:
                raise CdcError(f"{self.where}: the table has a column named {reserved!r}, which CDC records use for "
                               "the change's own value; rename the column or read the table with load 'delta'")
        key = [names.index(c) for c in self.primary_key if c in names] or [
            i for i, c in enumerate(relation.columns) if c.key]
        return _Table(relation, loaders, key)

    def _row(self, table: _Table, values: pgoutput.Values, *, old: pgoutput.Values | None = None,
             only_sent: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for i, (column, value) in enumerate(zip(table.relation.columns, values, strict=True)):
            if isinstance(value, str):  # pgoutput.UNCHANGED_TOAST
                if old is None or not isinstance(old[i], bytes):
                    raise CdcError(
                        f"{self.where}: an update left column {column.name!r} unchanged and stored out of line "
                        "(TOAST), and pgoutput does not send such a value; run ALTER TABLE "
                        f"{self.where.table} REPLICA IDENTITY FULL so that updates carry it, then take a new "
                        f"snapshot: {drop_slot_command(self.where.system_id, self.where.endpoint)}")
                value = old[i]
            if value is None:
                if not only_sent:
                    row[column.name] = None
                continue
            assert isinstance(value, bytes)
            row[column.name] = table.loaders[i].load(value)
        return row

    def _record(self, row: dict[str, Any], op: str) -> str:
        row[OP], row[LSN] = op, self.commit_lsn
        text = encode_row(row)
        if "\\u0000" in text:
            raise CdcError(f"{self.where}: a change holds a NUL character (\\u0000), which PostgreSQL's jsonb "
                           "cannot store")
        return text

    def records(self, message: pgoutput.Message) -> Iterator[str]:
        """The records one message gives (a change: one, or two for an update of the key; others: none)."""
        if isinstance(message, pgoutput.Begin):
            self.commit_lsn = pgoutput.lsn_text(message.final_lsn)
        elif isinstance(message, pgoutput.Relation):
            self.tables[message.oid] = self._table(message)
        elif isinstance(message, pgoutput.Insert):
            yield self._record(self._row(self.tables[message.relation_oid], message.new), INSERT)
        elif isinstance(message, pgoutput.Update):
            table = self.tables[message.relation_oid]
            if message.old is not None and any(
                    message.old[i] is not None and message.old[i] != message.new[i] for i in table.primary_key):
                # The key changed: the old key is gone (silver closes it), the new one opens.
                yield self._record(self._row(table, message.old, only_sent=message.old_kind == "K"), DELETE)
            old = message.old if message.old_kind == "O" else None
            yield self._record(self._row(table, message.new, old=old), UPDATE)
        elif isinstance(message, pgoutput.Delete):
            table = self.tables[message.relation_oid]
            # A key-only old tuple sends null for every other column: those are not values, so they are left out.
            yield self._record(self._row(table, message.old, only_sent=message.old_kind == "K"), DELETE)
        elif isinstance(message, pgoutput.Truncate):
            raise CdcError(f"{self.where}: the table was truncated (at commit {self.commit_lsn}); a truncate names no "
                           "keys, so it cannot be landed as deletes. Take a new snapshot: "
                           f"{drop_slot_command(self.where.system_id, self.where.endpoint)}, then run the system")


PEEK = ("select data from pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1',"
        " 'publication_names', %s)")


def changes(conn: psycopg.Connection, slot: str, publication: str, start: int, reader: ChangeReader, *,
            chunk_size: int) -> Iterator[tuple[str | None, int | None]]:
    """(record, None) per change of the transactions committed at or after `start` (a commit's end: the ones
    before were landed), then (None, end) at each of their commits; read with a server-side cursor inside the
    connection's (non-autocommit) transaction."""
    skipping = False
    with conn.cursor(name="dp_cdc_changes") as cur:
        cur.itersize = chunk_size
        cur.execute(PEEK, (slot, publication))
        for (data,) in cur:
            message = pgoutput.decode(data)
            if isinstance(message, pgoutput.Begin):
                skipping = message.final_lsn < start
            if isinstance(message, pgoutput.Relation):
                for _ in reader.records(message):  # relations are needed even from a skipped transaction
                    pass
                continue
            if skipping:
                continue
            if isinstance(message, pgoutput.Commit):
                yield None, message.end_lsn
                continue
            for record in reader.records(message):
                yield record, None


def snapshot_fields(row: dict[str, Any], consistent_point: str) -> dict[str, Any]:
    row[OP], row[LSN] = SNAPSHOT, consistent_point
    return row

