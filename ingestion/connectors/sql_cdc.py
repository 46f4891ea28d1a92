"""The `cdc` endpoints of a `sql_database` system: what the connector does for them, built on sql_database's reading
(chunks, values, retries, messages) and pg_cdc's slot, publication and change decoding (see pg_cdc for how a
snapshot and the changes after it fit together).

The endpoint's cursor (`audit.cursor`) is an LSN: the slot's consistent point after the snapshot batch, then the
end of the last commit a batch landed. It is the one record of where the endpoint stands; the slot follows it
(`release` after the landing committed, and `read` before reading, in case the run died in between).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import URL

from ingestion.connectors import pg_cdc
from ingestion.connectors.base import CursorReached, EndpointCheck
from ingestion.connectors.pg_cdc import CdcError, Where
from ingestion.connectors.pgoutput import lsn_number, lsn_text
from ingestion.connectors.sql_database import (
    SqlSourceError,
    database_url,
    row_text,
    shown,
    table_rows,
    with_retries,
)
from metadata.models import SqlDatabaseConnection
from secret_store.redact import redact


def where(connection: SqlDatabaseConnection, system_id: str, endpoint: str) -> tuple[URL, Where]:
    """The source's URL and what messages about the endpoint name; a URL of another database fails here."""
    spec = connection.endpoints[endpoint]
    url = database_url(connection)
    assert spec.table is not None
    found = Where(system_id, endpoint, spec.table, pg_cdc.cdc_name(system_id, endpoint), shown(url))
    if url.get_backend_name() != "postgresql":
        raise CdcError(f"{found}: load 'cdc' reads PostgreSQL's logical replication, and the URL names "
                       f"{url.get_backend_name()!r}; use load 'delta' (a cursor column) for other databases")
    return url, found


def _timeout(connection: SqlDatabaseConnection) -> int:
    return max(1, int(connection.retry.timeout))


def gone_text(found: Where) -> str:
    return ("the replication slot is gone (dropped on the source, or the server was rebuilt), so the changes since "
            "the last batch cannot be read. To start again from a new snapshot of the table: "
            f"{pg_cdc.drop_slot_command(found.system_id, found.endpoint)} (forgets the endpoint's position), then "
            f"dataplatform run --system {found.system_id}")


def gone(found: Where) -> CdcError:
    return CdcError(f"{found}: {gone_text(found)}")


def read(connection: SqlDatabaseConnection, system_id: str, endpoint: str, start: str | None,
         reached: CursorReached) -> Iterator[str]:
    """The endpoint's records in this batch: the snapshot (no cursor yet), or the changes after `start`."""
    url, found = where(connection, system_id, endpoint)
    spec = connection.endpoints[endpoint]
    if start is None:
        return with_retries(connection, endpoint, spec, url, lambda: _snapshot(connection, url, found, reached))
    try:
        begin = lsn_number(start)
    except ValueError as err:
        raise CdcError(f"{found}: the stored cursor is not an LSN ({err}); take a new snapshot: "
                       f"{pg_cdc.drop_slot_command(system_id, endpoint)}") from None
    reached.advance(endpoint, start)  # no change read: the endpoint stays where it was
    return with_retries(connection, endpoint, spec, url, lambda: _changes(connection, url, found, begin, reached))


def _snapshot(connection: SqlDatabaseConnection, url: URL, found: Where, reached: CursorReached) -> Iterator[str]:
    spec = connection.endpoints[found.endpoint]
    with pg_cdc.connect(url, timeout=_timeout(connection)) as conn:
        pg_cdc.require_logical(conn, found)
        assert spec.table is not None
        pg_cdc.ensure_publication(conn, found.slot, spec.table, found)
        # A slot without a landed batch is a first run's that died: its position is worth nothing without the
        # snapshot taken with it, so it is made again with a new one.
        pg_cdc.drop(conn, found.slot)
    with pg_cdc.new_slot(url, found.slot, found, timeout=_timeout(connection)) as (point, snapshot):
        for number, row in enumerate(table_rows(connection, found.endpoint, spec, None, snapshot=snapshot), start=1):
            if number == 1 and (taken := {pg_cdc.OP, pg_cdc.LSN} & row.keys()):
                raise CdcError(f"{found}: the table has a column named {sorted(taken)[0]!r}, which CDC records use "
                               "for the change's own value; rename the column or read the table with load 'delta'")
            yield row_text(pg_cdc.snapshot_fields(row, point), found.endpoint, spec, connection, number)
    reached.advance(found.endpoint, point)


def _changes(connection: SqlDatabaseConnection, url: URL, found: Where, begin: int,
             reached: CursorReached) -> Iterator[str]:
    spec = connection.endpoints[found.endpoint]
    assert spec.table is not None
    with pg_cdc.connect(url, timeout=_timeout(connection)) as admin:
        state = pg_cdc.slot_lsn(admin, found.slot)
        if state is None:
            raise gone(found)
        if state[0] > begin:
            raise CdcError(f"{found}: the slot stands at {lsn_text(state[0])}, after the position this batch reads "
                           f"from ({lsn_text(begin)}): the changes in between were released and cannot be read again. "
                           f"Take a new snapshot: {pg_cdc.drop_slot_command(found.system_id, found.endpoint)}")
        # The batch that read up to `begin` landed (it is the stored cursor), but the run may have died before
        # releasing: release now, so that what the slot retains starts here.
        pg_cdc.advance(admin, found.slot, lsn_text(begin))
    with pg_cdc.connect(url, timeout=_timeout(connection), autocommit=False) as conn:
        conn.execute("set transaction read only")
        reader = pg_cdc.ChangeReader(conn, found, pg_cdc.primary_key_columns(conn, spec.table))
        try:
            for record, end in pg_cdc.changes(conn, found.slot, found.slot, begin, reader, chunk_size=spec.chunk_size):
                if record is not None:
                    yield record
                elif end is not None:
                    reached.advance(found.endpoint, lsn_text(end))
        except psycopg.errors.UndefinedObject as err:
            if "replication slot" in str(err):
                raise gone(found) from None
            again = pg_cdc.drop_slot_command(found.system_id, found.endpoint)
            raise CdcError(f"{found}: {str(err).splitlines()[0]}; the publication {found.slot} may have been "
                           f"dropped: take a new snapshot ({again})") from None


def release(connection: SqlDatabaseConnection, system_id: str, cursors: Mapping[str, str]) -> list[str]:
    """Advance each CDC endpoint's slot to its stored cursor; notes for what could not be done (harmless: the next
    read advances it first)."""
    notes = []
    for endpoint, value in cursors.items():
        spec = connection.endpoints.get(endpoint)
        if spec is None or spec.load != "cdc":
            continue
        try:
            url, found = where(connection, system_id, endpoint)
            with pg_cdc.connect(url, timeout=_timeout(connection)) as conn:
                pg_cdc.advance(conn, found.slot, value)
        except (psycopg.Error, SqlSourceError, ValueError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            notes.append(redact(f"{system_id}.{endpoint}: the replication slot was not advanced to {value} ({first});"
                                " the next run advances it before reading"))
    return notes


@dataclass(frozen=True)
class SlotStatus:
    """An endpoint's slot as the operator sees it: `retained_bytes` of WAL the server keeps for it (None: no slot),
    and a problem in words (None: none)."""

    endpoint: str
    slot: str
    table: str
    retained_bytes: int | None
    problem: str | None


def slots(connection: SqlDatabaseConnection, system_id: str, cursors: Mapping[str, str]) -> list[SlotStatus]:
    """Each CDC endpoint's slot: what it retains, or that it is gone (a cursor is stored, the slot is not there)."""
    found_slots = []
    for endpoint, spec in connection.endpoints.items():
        if spec.load != "cdc":
            continue
        name, table = pg_cdc.cdc_name(system_id, endpoint), str(spec.table)
        try:
            url, found = where(connection, system_id, endpoint)
            with pg_cdc.connect(url, timeout=_timeout(connection)) as conn:
                state = pg_cdc.slot_lsn(conn, found.slot)
        except (psycopg.Error, SqlSourceError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            found_slots.append(SlotStatus(endpoint, name, table, None, redact(f"the source did not answer: {first}")))
            continue
        if state is None:
            problem = str(gone(found)) if endpoint in cursors else None
            found_slots.append(SlotStatus(endpoint, name, table, None, problem))
        else:
            found_slots.append(SlotStatus(endpoint, name, table, state[1], None))
    return found_slots


def drop_slot(connection: SqlDatabaseConnection, system_id: str, endpoint: str) -> bool:
    """Drop the endpoint's slot on the source; whether it was there (the publication stays: it costs nothing)."""
    url, _ = where(connection, system_id, endpoint)
    with pg_cdc.connect(url, timeout=_timeout(connection)) as conn:
        return pg_cdc.drop(conn, pg_cdc.cdc_name(system_id, endpoint))


def size(count: int) -> str:
    """Bytes for people: 12.3 MiB."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} bytes"


def check(connection: SqlDatabaseConnection, system_id: str, endpoint: str, cursors: Mapping[str, str],
          table_check: EndpointCheck) -> EndpointCheck:
    """What stands in the way of the endpoint's CDC: wal_level, the REPLICATION attribute, a replication connection,
    the publication, a slot that is gone; `table_check`: the table checked as for any endpoint."""
    if not table_check.ok:
        return table_check
    try:
        url, found = where(connection, system_id, endpoint)
    except SqlSourceError as err:
        return EndpointCheck(endpoint, False, redact(str(err)))
    problems: list[str] = []
    said: list[str] = []
    try:
        with pg_cdc.connect(url, timeout=_timeout(connection)) as conn:
            if (level := pg_cdc.wal_level(conn)) != "logical":
                problems.append(f"wal_level is {level!r}, CDC needs 'logical': set wal_level = logical in the server's "
                                "postgresql.conf and restart it")
            if not pg_cdc.may_replicate(conn):
                problems.append(f"the user lacks the REPLICATION attribute: ALTER ROLE {url.username} REPLICATION "
                                "(as a superuser)")
            problems += _publication_problems(conn, found)
            state = pg_cdc.slot_lsn(conn, found.slot)
            if state is None and endpoint in cursors:
                problems.append(gone_text(found))
            elif state is None:
                said.append(f"no slot {found.slot} yet: the first run creates it and takes a snapshot")
            else:
                said.append(f"slot {found.slot} retains {size(state[1])} of WAL")
        if not problems:
            try:
                with pg_cdc.connect(url, timeout=_timeout(connection), replication=True) as rep:
                    rep.execute("IDENTIFY_SYSTEM")
            except psycopg.Error as err:
                problems.append(pg_cdc.replication_refused(url.username, err))
    except psycopg.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        problems.append(first)
    if problems:
        return EndpointCheck(endpoint, False, redact(f"{found}: " + "; ".join(problems)))
    return EndpointCheck(endpoint, True, redact(f"{table_check.message}; cdc: wal_level logical, replication "
                                                f"allowed, {', '.join(said)}"))


def _publication_problems(conn: psycopg.Connection, found: Where) -> list[str]:
    exists = conn.execute("select 1 from pg_publication where pubname = %s", (found.slot,)).fetchone()
    row: Any = conn.execute("select pg_has_role(c.relowner, 'USAGE'), n.nspname, c.relname from pg_class c join "
                            "pg_namespace n on n.oid = c.relnamespace where c.oid = %s::regclass",
                            (found.table,)).fetchone()
    owner, schema, bare = bool(row[0]), str(row[1]), str(row[2])
    if exists is None:
        return [] if owner else [f"the publication {found.slot} is not there and only the table's owner can create "
                                 f"it: as its owner run CREATE PUBLICATION {found.slot} FOR TABLE {schema}.{bare}"]
    covers = conn.execute("select 1 from pg_publication_tables where pubname = %s and schemaname = %s"
                          " and tablename = %s", (found.slot, schema, bare)).fetchone()
    return [] if covers else [f"the publication {found.slot} does not publish {schema}.{bare}: ALTER PUBLICATION "
                              f"{found.slot} ADD TABLE {schema}.{bare}"]
