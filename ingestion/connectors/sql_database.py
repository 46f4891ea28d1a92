"""Connector for `sql_database` systems: tables and read-only queries of PostgreSQL and MySQL/MariaDB.

What comes from dlt: the table loader of dlt's `sql_database` source (`dlt.sources.sql_database.helpers.
TableLoader`): it runs the statement over a SQLAlchemy connection with `yield_per` (a server-side cursor:
psycopg's named cursor, PyMySQL's unbuffered cursor) and hands the rows on in partitions of `chunk_size`, so
memory stays flat in the size of the table. The drivers: psycopg 3 (`postgresql+psycopg`) and PyMySQL
(`mysql+pymysql`, `mariadb+pymysql`). What the platform adds: the statement (its cursor filter), a read-only
transaction around every read, the session in UTC, how values are written (`sql_values`), retries of transient
errors and terminal errors that name the endpoint, table and server (never the password).

Read-only: every read runs in a transaction the server itself keeps read-only (PostgreSQL `SET TRANSACTION READ
ONLY`, MySQL/MariaDB `START TRANSACTION READ ONLY`), so a query endpoint cannot write, whatever it holds (an
INSERT, a data-modifying CTE, a function with side effects: the server refuses them). Validation also asks for a
single statement starting with SELECT or WITH, to say so early.

The cursor: `audit.cursor` is the truth, and the only record of where an endpoint stands. A `delta` endpoint reads
the rows whose `cursor_column` is at or after the stored value (`>=`: the rows whose cursor equals it are read
again, never lost at the boundary; silver sees them unchanged), ordered by it; the largest value read goes to
`CursorReached`, which landing stores only once the batch has landed. dlt's own incremental state
(`dlt.sources.incremental`, the pipeline state) is not used at all: the loader is given no `incremental` and
the filter is built here from the stored value, so there is no second cursor that could disagree with the
audit table. Rows whose cursor is NULL are read by the first batch only (no stored cursor yet).

Retries: a transient error (no connection, a lost connection, a deadlock, a serialization failure, too many
connections) is retried with exponential backoff and jitter as the system's `retry` says, while nothing of the
endpoint has been handed on; once rows have gone to landing, a lost connection fails the batch (nothing of it
is kept; the next run reads the same range again).

Run on its own to see what an endpoint gives: `python -m ingestion.connectors.sql_database URL TABLE_OR_QUERY`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from dlt.sources.sql_database.helpers import TableLoader
from sqlalchemy.dialects.mysql import TIMESTAMP as MYSQL_TIMESTAMP
from sqlalchemy.dialects.mysql import TINYINT as MYSQL_TINYINT
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine import Connection as SaConnection
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchTableError, SQLAlchemyError

from ingestion.connectors.base import CursorReached, EndpointCheck, PendingLoad, load_at_run_time, load_named
from ingestion.connectors.sql_values import cursor_text, encode_row
from metadata.models import Connection, SqlDatabaseConnection, SqlEndpoint
from secret_store.redact import redact, remember_secret

_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "mysql": "mysql+pymysql",
            "mariadb": "mariadb+pymysql"}
_INSTALLED = {"psycopg", "pymysql"}
# JSON is read with its numbers as Decimal, so that 2.50 inside a JSON value stays 2.50.
_JSON_LOADS = functools.partial(json.loads, parse_float=Decimal)

# PostgreSQL SQLSTATEs worth another attempt: connection exceptions (08...), serialization failure, deadlock,
# the server shutting down or starting, too many connections, a lock not available.
_PG_TRANSIENT = {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03"}
# MySQL/MariaDB error numbers worth another attempt: can't connect, server gone away, lost connection, too many
# connections, lock wait timeout, deadlock, server shutdown.
_MYSQL_TRANSIENT = {2002, 2003, 2006, 2013, 2055, 1040, 1053, 1205, 1213}
_PG_HINTS = {
    "28P01": "the credentials were refused; check the secrets of 'url' or 'user'/'password'",
    "28000": "the credentials were refused; check the secrets of 'url' or 'user'/'password'",
    "3D000": "the database is not there; check 'database' (or the URL's)",
    "42P01": "the table is not there; check the endpoint's 'table' (schema-qualified) or its query",
    "3F000": "the schema is not there; check the endpoint's 'table' (schema-qualified)",
    "42703": "a column is not there; check the endpoint's 'cursor_column' or its query",
    "42501": "permission denied; grant the user SELECT on it (and USAGE on its schema)",
    "25006": "the query tried to write, and reads run in a read-only transaction; give a plain SELECT",
    "42601": "the query is not valid SQL; fix the endpoint's 'query'",
}
_MYSQL_HINTS = {
    1045: "the credentials were refused; check the secrets of 'url' or 'user'/'password'",
    1044: "access denied to the database; grant the user SELECT on it",
    1049: "the database is not there; check 'database' (or the URL's)",
    1146: "the table is not there; check the endpoint's 'table' (database-qualified) or its query",
    1054: "a column is not there; check the endpoint's 'cursor_column' or its query",
    1142: "permission denied; grant the user SELECT on it",
    1143: "permission denied on a column; grant the user SELECT on it",
    1792: "the query tried to write, and reads run in a read-only transaction; give a plain SELECT",
    1064: "the query is not valid SQL; fix the endpoint's 'query'",
}


class SqlSourceError(RuntimeError):
    """The source database refused or failed a read; the message names the endpoint, table and server."""


# ------------------------------------------------------------------------------------------ connecting


def database_url(connection: SqlDatabaseConnection) -> URL:
    """The SQLAlchemy URL of the source (secrets resolved), with the platform's driver for its database."""
    if connection.url is not None:
        try:
            url = sa.engine.make_url(str(connection.url))
        except ArgumentError:
            raise SqlSourceError("the secret of 'url' is not a database URL; write it as "
                                 "postgresql://USER:PASSWORD@HOST:PORT/DATABASE or mysql://...") from None
        backend, _, driver = url.drivername.partition("+")
        if backend not in _DRIVERS:
            raise SqlSourceError(f"the URL's database {backend!r} is not supported; use postgresql:// or mysql:// "
                                 "(or mariadb://)")
        if driver and driver not in _INSTALLED:
            raise SqlSourceError(f"the URL names the driver {driver!r}, which is not installed; leave it out "
                                 f"({backend}://...) to use {_DRIVERS[backend].split('+')[1]}")
        if url.password:
            remember_secret(str(url.password))
        return url.set(drivername=_DRIVERS[backend])
    if connection.password is not None:
        remember_secret(str(connection.password))
    assert connection.driver is not None
    return URL.create(_DRIVERS[connection.driver], username=str(connection.user), password=(
        str(connection.password) if connection.password is not None else None), host=connection.host,
        port=connection.port, database=connection.database)


def shown(url: URL) -> str:
    """The server as a message may name it: the URL without its password (and masked anyway)."""
    return redact(url.set(drivername=url.get_backend_name(), password=None).render_as_string(hide_password=True))


def make_engine(connection: SqlDatabaseConnection) -> Engine:
    """An engine whose sessions run in UTC (timestamps with a zone come as UTC), with the system's connect
    timeout; no pool (a batch opens one connection per endpoint read)."""
    url = database_url(connection)
    timeout = max(1, int(connection.retry.timeout))
    if url.get_backend_name() == "postgresql":
        args: dict[str, Any] = {"options": "-c TimeZone=UTC", "connect_timeout": timeout}
    else:
        args = {"init_command": "SET time_zone = '+00:00'", "connect_timeout": timeout, "charset": "utf8mb4"}
    # JSON columns are read with their numbers as Decimal, so that 2.50 inside a JSON value stays 2.50.
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args,
                            json_deserializer=_JSON_LOADS)


def begin_read_only(conn: SaConnection) -> None:
    """Start the connection's transaction read-only: the server refuses any write in it."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    else:
        conn.exec_driver_sql("START TRANSACTION READ ONLY")


# ------------------------------------------------------------------------------------------ statements


def _reflect(conn: SaConnection, name: str) -> sa.Table:
    schema, _, table = name.rpartition(".")
    return sa.Table(table, sa.MetaData(), schema=schema or None, autoload_with=conn)


def _typed(text: str, column_type: sa.types.TypeEngine[Any] | None) -> Any:
    """The stored cursor text as a value of the cursor column's type (compared by the server as that type)."""
    try:
        python_type = column_type.python_type if column_type is not None else None
    except NotImplementedError:
        python_type = None
    if python_type is None:  # a query's column: guessed from the text
        if text.lstrip("-").isdigit():
            return int(text)
        if len(text) >= 10 and text[4:5] == "-" and text[7:8] == "-":
            try:
                return (dt.date.fromisoformat(text) if len(text) == 10
                        else dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                return text
        return text
    if python_type is bool:
        return text.lower() in ("true", "1")
    if python_type is int:
        return int(text)
    if python_type is float:
        return float(text)
    if python_type is Decimal:
        return Decimal(text)
    if python_type is dt.datetime:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if python_type is dt.date:
        return dt.date.fromisoformat(text[:10])
    return text


@dataclass
class _MySqlTypes:
    """Columns of a MySQL/MariaDB table whose values the driver gives in a form that loses their meaning:
    TIMESTAMPs (stored in UTC, read naive: they are given their zone), MariaDB's JSON (a LONGTEXT checked by
    `json_valid`: read as text, parsed here) and BOOLEAN (a TINYINT(1): 0/1 become false/true)."""

    utc: set[str] = field(default_factory=set)
    json: set[str] = field(default_factory=set)
    boolean: set[str] = field(default_factory=set)

    def fix(self, row: dict[str, Any]) -> None:
        for name in self.utc:
            if isinstance(value := row.get(name), dt.datetime) and value.tzinfo is None:
                row[name] = value.replace(tzinfo=dt.UTC)
        for name in self.json:
            if isinstance(value := row.get(name), str):
                row[name] = _JSON_LOADS(value)
        for name in self.boolean:
            if (value := row.get(name)) in (0, 1):
                row[name] = bool(value)



def _mysql_types(conn: SaConnection, table: sa.Table) -> _MySqlTypes:
    types = _MySqlTypes()
    types.utc = {c.name for c in table.columns if isinstance(c.type, MYSQL_TIMESTAMP)}
    types.boolean = {c.name for c in table.columns
                     if isinstance(c.type, MYSQL_TINYINT) and getattr(c.type, "display_width", None) == 1}
    checks = sa.text("select CHECK_CLAUSE from information_schema.CHECK_CONSTRAINTS where CONSTRAINT_SCHEMA = "
                     "coalesce(:schema, database()) and TABLE_NAME = :table")
    try:
        clauses = conn.execute(checks, {"schema": table.schema, "table": table.name}).scalars().all()
    except DBAPIError:  # MySQL names no table there (it has a JSON type of its own, which SQLAlchemy parses)
        return types
    names = {c.name for c in table.columns}
    types.json = {name for clause in clauses if (name := _json_valid_column(str(clause))) in names}
    return types


def _json_valid_column(clause: str) -> str | None:
    text = clause.strip().replace(" ", "")
    if text.lower().startswith("json_valid(`") and text.endswith("`)"):
        return text[len("json_valid(`"):-2]
    return None


def _statement(conn: SaConnection, spec: SqlEndpoint, start: str | None) -> tuple[Any, _MySqlTypes]:
    """The statement of an endpoint from `start` (None: from the beginning), and (MySQL/MariaDB tables) the
    columns whose values are fixed after reading."""
    types = _MySqlTypes()
    cursor = spec.cursor_column if spec.load == "delta" else None
    if spec.table is not None:
        table = _reflect(conn, spec.table)
        if conn.dialect.name != "postgresql":
            types = _mysql_types(conn, table)
        statement = sa.select(table)
        if cursor is not None:
            if cursor not in table.c:
                raise _MissingColumn(f"the cursor column {cursor!r} is not a column of the table (it has: "
                                     f"{', '.join(table.c.keys())}); fix the endpoint's 'cursor_column'")
            column = table.c[cursor]
            if start is not None:
                statement = statement.where(column >= sa.bindparam("dp_cursor", _cursor_value(start, column.type),
                                                                   type_=column.type))
            statement = statement.order_by(column)
        return statement, types
    assert spec.query is not None
    query = spec.query.strip().rstrip(";").replace(":", "\\:")  # a colon in the query is the query's, not a bind
    if cursor is None:
        return sa.text(query), types
    quoted = conn.dialect.identifier_preparer.quote(cursor)
    where = f" where {quoted} >= :dp_cursor" if start is not None else ""
    text = sa.text(f"select * from ({query}\n) as dp_query{where} order by {quoted}")  # \n: ends a -- comment
    if start is not None:
        text = text.bindparams(dp_cursor=_cursor_value(start, None))
    return text, types


class _MissingColumn(Exception):
    """The declared cursor column is not in the table (a terminal error)."""


class _BadCursor(Exception):
    """The cursor value (stored or `initial_cursor`) is not a value of the cursor column's type."""


def _cursor_value(text: str, column_type: sa.types.TypeEngine[Any] | None) -> Any:
    try:
        return _typed(text, column_type)
    except (ValueError, InvalidOperation) as err:
        raise _BadCursor(f"{text!r} ({err})") from None


class ReadOnlyLoader(TableLoader):
    """dlt's table loader (streaming with `yield_per`, rows handed on in partitions of `chunk_size`), run in a
    read-only transaction, with the statement built from the stored cursor once the table is reflected."""

    def __init__(self, engine: Engine, spec: SqlEndpoint, start: str | None, *, snapshot: str | None = None) -> None:
        name = spec.table or "query"
        super().__init__(engine, "sqlalchemy", sa.Table(name.rpartition(".")[2], sa.MetaData()), {},
                         chunk_size=spec.chunk_size, incremental=None)
        self.spec, self.start, self.snapshot = spec, start, snapshot
        self.types = _MySqlTypes()

    def load_rows(self, backend_kwargs: dict[str, Any] | None = None) -> Iterator[Any]:
        with self.engine.connect() as conn:
            if self.snapshot is not None:  # a CDC endpoint's first batch: the slot's exported snapshot (pg_cdc)
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")
            else:
                begin_read_only(conn)
            statement, self.types = _statement(conn, self.spec, self.start)
            result = conn.execution_options(yield_per=self.chunk_size).execute(statement)
            try:
                yield from self._convert_result(result, {})
            finally:
                result.close()


# ------------------------------------------------------------------------------------------ errors


def _code(err: BaseException) -> tuple[str | int | None, str]:
    """The driver's error code (PostgreSQL SQLSTATE or MySQL error number) and its first line of text."""
    orig = getattr(err, "orig", None) or err
    sqlstate = getattr(orig, "sqlstate", None)
    args = getattr(orig, "args", ())
    code: str | int | None = sqlstate or (args[0] if args and isinstance(args[0], int) else None)
    text = str(args[1]) if len(args) > 1 and isinstance(args[0], int) else str(orig)
    return code, redact(text.strip().splitlines()[0] if text.strip() else type(orig).__name__)


def _login_refused(err: BaseException) -> str | None:
    """The hint for a PostgreSQL login the server refused (psycopg gives no SQLSTATE for those), or None."""
    text = str(getattr(err, "orig", None) or err)
    if "authentication failed" in text or "no password supplied" in text or (
            "role \"" in text and "does not exist" in text) or "no pg_hba.conf entry" in text:
        return _PG_HINTS["28P01"]
    if "database \"" in text and "does not exist" in text:
        return _PG_HINTS["3D000"]
    return None


def is_transient(err: BaseException) -> bool:
    """Whether another attempt may succeed: no connection, a lost one, a deadlock, a serialization failure (an
    error through SQLAlchemy, or straight from psycopg as CDC reads get them)."""
    if not isinstance(err, DBAPIError | psycopg.Error):
        return False
    code, _ = _code(err)
    if isinstance(code, int):
        return code in _MYSQL_TRANSIENT
    if code is None:  # psycopg: no SQLSTATE = no session: the server did not answer, or refused the login
        return isinstance(err, sa.exc.OperationalError | psycopg.OperationalError) and _login_refused(err) is None
    return code.startswith("08") or code in _PG_TRANSIENT


def _what(spec: SqlEndpoint) -> str:
    return f"table {spec.table}" if spec.table is not None else "its query"


def failure(endpoint: str, spec: SqlEndpoint, url: URL, err: BaseException, *, attempts: int = 1) -> SqlSourceError:
    """A terminal error, in words: the endpoint, its table, the server (no password), what failed and what to do."""
    where = f"endpoint {endpoint}, {_what(spec)} on {shown(url)}"
    if isinstance(err, NoSuchTableError):
        return SqlSourceError(f"{where}: the table is not there (or not visible to the user); check the endpoint's "
                              "'table' (schema-qualified)")
    if isinstance(err, _MissingColumn):
        return SqlSourceError(f"{where}: {err}")
    if isinstance(err, _BadCursor):
        return SqlSourceError(f"{where}: the cursor value {redact(str(err))} is not a value of column "
                              f"{spec.cursor_column!r}; fix the endpoint's 'initial_cursor'")
    code, text = _code(err)
    if is_transient(err):
        return SqlSourceError(f"{where}: still failing after {attempts} attempt(s): {text}; check that the server "
                              "is up and reachable, or try again later (raise the system's 'retry' limits)")
    hint = (_MYSQL_HINTS.get(code) if isinstance(code, int) else _PG_HINTS.get(code or "")) or (
        _login_refused(err) if code is None else None) or ""
    return SqlSourceError(f"{where}: {text}" + (f"; {hint}" if hint else ""))


def with_retries(connection: SqlDatabaseConnection, endpoint: str, spec: SqlEndpoint, url: URL,
                 read: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """The items of `read()`, which is started again (with backoff and jitter) after a transient error as long as
    it has handed nothing on; any other error, or one after rows were handed on, fails at once."""
    limits = connection.retry
    attempt = 0
    while True:
        attempt += 1
        handed_on = False
        try:
            for item in read():
                handed_on = True
                yield item
            return
        except (SQLAlchemyError, psycopg.Error, _MissingColumn, _BadCursor) as err:
            if handed_on or not is_transient(err) or attempt >= limits.max_attempts:
                raise failure(endpoint, spec, url, err, attempts=attempt) from None
            wait = min(limits.max_delay, limits.backoff_factor * 2 ** (attempt - 1)) + random.uniform(0, limits.jitter)
            time.sleep(wait)


# ------------------------------------------------------------------------------------------ reading


def table_rows(connection: SqlDatabaseConnection, endpoint: str, spec: SqlEndpoint, start: str | None, *,
               snapshot: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of an endpoint's table or query (from the cursor value `start`; in the exported `snapshot` of a
    CDC endpoint's first batch), as column name -> value, read in chunks with retries."""
    try:
        engine = make_engine(connection)
    except SqlSourceError as err:
        raise SqlSourceError(f"endpoint {endpoint}: {err}") from None
    try:
        loader = ReadOnlyLoader(engine, spec, start, snapshot=snapshot)
        for chunk in with_retries(connection, endpoint, spec, engine.url, loader.load_rows):
            types = loader.types
            fix = types.fix if types.utc or types.json or types.boolean else None
            for row in chunk:
                if fix is not None:
                    fix(row)
                yield row
    finally:
        engine.dispose()


def row_text(row: dict[str, Any], endpoint: str, spec: SqlEndpoint, connection: SqlDatabaseConnection,
             number: int) -> str:
    """A row as the JSON text it lands as; a NUL character, which jsonb cannot store, fails the batch."""
    text = encode_row(row)
    if "\\u0000" in text:
        raise SqlSourceError(f"endpoint {endpoint}, {_what(spec)} on {shown(database_url(connection))}: row {number} "
                             "holds a NUL character (\\u0000), which PostgreSQL's jsonb cannot store")
    return text


# ------------------------------------------------------------------------------------------ the connector


class SqlDatabaseConnector:
    """The `sql_database` connector: each run is a batch that reads every endpoint (a delta one from its cursor)."""

    def next_load(self, system_id: str, connection: Connection, *, landed: set[str], cursors: Mapping[str, str],
                  base_dir: Path) -> PendingLoad:
        """Always a load: only reading the database tells whether anything is new. Its source ref is the run's UTC
        timestamp, which is also the batch timestamp (the moment the data was taken)."""
        assert isinstance(connection, SqlDatabaseConnection)
        return load_at_run_time(landed=landed, cursors=self._delta_cursors(connection, cursors), system_id=system_id)

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *, cursors: Mapping[str, str],
                  base_dir: Path) -> PendingLoad:
        """The batch `source_ref` again, read from where it started (the database answers with what it has now).
        A CDC endpoint cannot give an earlier batch again: its slot released those changes once it landed."""
        assert isinstance(connection, SqlDatabaseConnection)
        if cdc := [e for e, spec in connection.endpoints.items() if spec.load == "cdc"]:
            raise SqlSourceError(
                f"system {system_id}: batch {source_ref} cannot be read again: endpoint {cdc[0]} is read by change "
                "data capture, and its replication slot released that batch's changes once it had landed. To land the "
                f"table whole again, take a new snapshot: dataplatform cdc drop-slot {system_id} {cdc[0]}, then "
                f"dataplatform run --system {system_id}")
        return load_named(source_ref, self._delta_cursors(connection, cursors), system_id=system_id)

    @staticmethod
    def _delta_cursors(connection: SqlDatabaseConnection, cursors: Mapping[str, str]) -> dict[str, str]:
        delta = {e for e, spec in connection.endpoints.items() if spec.load in ("delta", "cdc")}
        return {e: v for e, v in cursors.items() if e in delta}

    def raw_records(self, connection: Connection, endpoint: str, load: PendingLoad, *, base_dir: Path,
                    reached: CursorReached) -> Iterator[str]:
        """The endpoint's rows, each as its JSON text (see `sql_values`); a delta endpoint's largest cursor value
        goes to `reached`."""
        assert isinstance(connection, SqlDatabaseConnection)
        spec = connection.endpoints[endpoint]
        if spec.load == "cdc":
            from ingestion.connectors import sql_cdc  # it builds on this module

            yield from sql_cdc.read(connection, load.system_id, endpoint, load.cursors.get(endpoint), reached)
            return
        stored = load.cursors.get(endpoint) if spec.load == "delta" else None
        start = stored if stored is not None else (spec.initial_cursor if spec.load == "delta" else None)
        if stored is not None:
            reached.advance(endpoint, stored)  # nothing newer read: the endpoint stays where it was
        cursor = spec.cursor_column if spec.load == "delta" else None
        best: Any = None
        for number, row in enumerate(table_rows(connection, endpoint, spec, start), start=1):
            text = row_text(row, endpoint, spec, connection, number)
            if cursor is not None and (value := row.get(cursor)) is not None and (best is None or value > best):
                best = value
            yield text
        if best is not None:
            reached.advance(endpoint, cursor_text(best))

    def release(self, system_id: str, connection: Connection, cursors: Mapping[str, str], *,
                base_dir: Path) -> list[str]:
        """The batch landed: each CDC endpoint's slot advances to its stored cursor (sql_cdc.release)."""
        assert isinstance(connection, SqlDatabaseConnection)
        if not any(spec.load == "cdc" for spec in connection.endpoints.values()):
            return []
        from ingestion.connectors import sql_cdc

        return sql_cdc.release(connection, system_id, cursors)

    def replication_slots(self, system_id: str, connection: Connection, cursors: Mapping[str, str]) -> list[Any]:
        """Each CDC endpoint's replication slot (sql_cdc.SlotStatus): the WAL it retains, or that it is gone."""
        assert isinstance(connection, SqlDatabaseConnection)
        from ingestion.connectors import sql_cdc

        return list(sql_cdc.slots(connection, system_id, cursors))

    def drop_replication_slot(self, system_id: str, connection: Connection, endpoint: str) -> bool:
        """Drop a CDC endpoint's replication slot on the source; whether it was there."""
        assert isinstance(connection, SqlDatabaseConnection)
        from ingestion.connectors import sql_cdc

        return sql_cdc.drop_slot(connection, system_id, endpoint)

    def check(self, connection: Connection, *, base_dir: Path, system_id: str = "",
              cursors: Mapping[str, str] | None = None) -> list[EndpointCheck]:
        """Per endpoint, landing nothing: connects (with the credentials), and reads none of the table's or
        query's rows (`limit 0`) in a read-only transaction, so that its table, columns and permissions are checked.
        A CDC endpoint also: wal_level, the REPLICATION attribute, the publication, its slot (gone while `cursors`,
        the system's `audit.cursor`, holds a position)."""
        assert isinstance(connection, SqlDatabaseConnection)
        checks = self._check_tables(connection)
        if not any(spec.load == "cdc" for spec in connection.endpoints.values()):
            return checks
        from ingestion.connectors import sql_cdc

        return [sql_cdc.check(connection, system_id, c.endpoint, cursors or {}, c)
                if connection.endpoints[c.endpoint].load == "cdc" else c for c in checks]

    def _check_tables(self, connection: SqlDatabaseConnection) -> list[EndpointCheck]:
        results = []
        try:
            engine = make_engine(connection)
        except SqlSourceError as err:
            return [EndpointCheck(endpoint, False, redact(str(err))) for endpoint in connection.endpoints]
        try:
            for endpoint, spec in connection.endpoints.items():
                def probe(spec: SqlEndpoint = spec) -> Iterator[list[str]]:
                    with engine.connect() as conn:
                        begin_read_only(conn)
                        statement, _ = _statement(conn, spec, None)
                        if spec.table is not None:
                            statement = statement.limit(0)
                        else:
                            statement = sa.text(f"select * from ({statement.text}\n) as dp_check limit 0")
                        result = conn.execute(statement)
                        keys = list(result.keys())
                        result.close()
                        if spec.load == "delta" and spec.cursor_column not in keys:
                            raise _MissingColumn(f"the cursor column {spec.cursor_column!r} is not a column of the "
                                                 f"query (it gives: {', '.join(keys)}); fix 'cursor_column'")
                        yield keys

                try:
                    [keys] = list(with_retries(connection, endpoint, spec, engine.url, probe))
                except SqlSourceError as err:
                    results.append(EndpointCheck(endpoint, False, redact(str(err))))
                    continue
                results.append(EndpointCheck(endpoint, True, f"{_what(spec)} readable on {shown(engine.url)}, "
                                                             f"{len(keys)} column(s)"))
        finally:
            engine.dispose()
        return results


if __name__ == "__main__":
    target = sys.argv[2]
    is_query = target.lower().lstrip().startswith(("select", "with"))
    source = SqlDatabaseConnection.model_validate({
        "type": "sql_database", "url": sys.argv[1],
        "endpoints": {"endpoint": {"query": target} if is_query else {"table": target}}}, context={"resolved": True})
    for raw in SqlDatabaseConnector().raw_records(source, "endpoint", PendingLoad("now", dt.datetime.now(dt.UTC)),
                                                  base_dir=Path("."), reached=CursorReached()):
        print(raw)
