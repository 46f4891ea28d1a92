"""From a source to the `landing` schema: one dlt pipeline per system, one batch per run.

Every landed row is what the source returned, as-is, in one JSONB column `payload`, plus the batch
columns that link it to the audit tables: `_batch_id`, `_batch_timestamp`, `_run_id`, `_loaded_at`
and `_record_no` (position in the source file). Tables are append-only; the only rows ever removed
are those of a batch that did not finish, and the old rows of a batch re-landed on purpose (removed
only once its new rows are complete), so a failed run leaves nothing of its batch behind and a failed
re-land leaves the batch as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import psycopg
import pyarrow as pa
from dlt.extract.source import DltSource
from dlt.pipeline.trace import TRACE_FILE_NAME
from psycopg import sql

from ingestion.connectors import CursorReached, PendingLoad, connector_for
from metadata.models import Connection, System
from metadata.naming import landing_table
from observability.logs import json_logs
from warehouse.files import private_folder

LANDING_SCHEMA = "landing"
LOADER_FILE_FORMAT = "csv"  # Arrow tables -> CSV files -> PostgreSQL COPY
SYSTEM_COLUMNS: dict[str, Any] = {
    "_batch_id": {"data_type": "bigint", "nullable": False},
    "_batch_timestamp": {"data_type": "timestamp", "nullable": False},
    "_run_id": {"data_type": "text", "nullable": False},
    "_loaded_at": {"data_type": "timestamp", "nullable": False},
    "_record_no": {"data_type": "bigint", "nullable": False},
    "payload": {"data_type": "json", "nullable": True},
}


@dataclass(frozen=True)
class Batch:
    """One ingestion run of a system: what it loads and the ids every row carries."""

    batch_id: int
    system_id: str
    source_ref: str  # for json_files: the delivery folder name
    timestamp: dt.datetime
    run_id: str
    loaded_at: dt.datetime


ROWS_PER_TABLE = 20_000  # Arrow tables of this many records: memory stays flat, dlt's per-table cost small


def _tables(batch: Batch, raw_records: Iterator[str]) -> Iterator[pa.Table]:
    """The batch's rows as Arrow tables: dlt writes Arrow straight to files PostgreSQL COPYs, without
    normalizing row by row in Python (which made landing far slower than the COPY itself)."""
    def table(payloads: list[str], first_number: int) -> pa.Table:
        n = len(payloads)
        return pa.table({
            "_batch_id": pa.repeat(pa.scalar(batch.batch_id, pa.int64()), n),
            "_batch_timestamp": pa.repeat(pa.scalar(batch.timestamp, pa.timestamp("us", tz="UTC")), n),
            "_run_id": pa.repeat(pa.scalar(batch.run_id, pa.string()), n),
            "_loaded_at": pa.repeat(pa.scalar(batch.loaded_at, pa.timestamp("us", tz="UTC")), n),
            "_record_no": pa.array(range(first_number, first_number + n), pa.int64()),
            "payload": pa.array(payloads, pa.string()),
        })

    payloads: list[str] = []
    number = 1
    for raw in raw_records:
        payloads.append(raw)
        if len(payloads) == ROWS_PER_TABLE:
            yield table(payloads, number)
            number += len(payloads)
            payloads = []
    if payloads:
        yield table(payloads, number)


def landing_source(
    system: System, *, batch: Batch | None = None, load: PendingLoad | None = None,
    reached: CursorReached | None = None, connection: Connection | None = None, base_dir: Path | None = None
) -> DltSource:
    """A dlt source with one resource per endpoint, named by its landing table; the records come from
    the connector of the system's type, which says in `reached` where reading got to (landing stores it
    once the batch has landed).

    Without a batch it yields nothing: that form only describes the resources (for Dagster's
    asset definitions, which are built before any run).
    """

    def records(endpoint: str) -> Iterator[pa.Table]:
        if batch is None or load is None or reached is None or connection is None or base_dir is None:
            return iter(())
        raw = connector_for(system.type).raw_records(connection, endpoint, load, base_dir=base_dir, reached=reached)
        return _tables(batch, raw)

    resources = [
        dlt.resource(
            records(endpoint),
            name=landing_table(system.id, endpoint),
            write_disposition="append",
            columns=SYSTEM_COLUMNS,
            max_table_nesting=0,
        )
        for endpoint in system.endpoints()
    ]
    return dlt.source(lambda: resources, name=system.id.lower(), max_table_nesting=0)()


def landing_pipeline(system_id: str, url: str, *, pipelines_dir: Path) -> dlt.Pipeline:
    """The dlt pipeline of one system; its working files live under the platform's state folder."""
    # dlt gzips its intermediate files by default: CPU spent on files that are deleted right after.
    for stage in ("data_writer", "normalize.data_writer", "extract.data_writer"):
        dlt.config[f"{stage}.disable_compression"] = True
    # dlt keeps a loaded package's files (the landed records, names and emails) unless told otherwise:
    # once the rows are in the warehouse, the copies on disk are only a liability.
    dlt.config["load.delete_completed_jobs"] = True
    private_folder(pipelines_dir)
    return dlt.pipeline(
        pipeline_name=f"landing_{system_id.lower()}",
        destination=dlt.destinations.postgres(credentials=url),
        dataset_name=LANDING_SCHEMA,
        pipelines_dir=str(pipelines_dir),
        progress=_progress(),
    )


def _progress() -> Any:
    """dlt's progress lines: printed to stdout, or with JSON logs through the platform's logger (one JSON line
    each, with the run and batch ids)."""
    if not json_logs():
        return "log"
    from dlt.common.runtime.collector import LogCollector

    return LogCollector(logger=logging.getLogger("dataplatform.dlt"), log_level=logging.INFO)


def forget_run(pipeline: dlt.Pipeline, *, failed: bool = False) -> None:
    """Leave nothing of a run's data on disk: dlt pickles the last run's trace (its errors' text, which
    may quote a source's secret path, and the settings it resolved) into the pipeline's folder, and a
    failed run leaves its packages (the records it had extracted) pending. The batch is landed again
    from the source by the next run, so neither is needed (loaded packages' files: see landing_pipeline)."""
    Path(pipeline.working_dir, TRACE_FILE_NAME).unlink(missing_ok=True)
    if failed:
        for folder in (Path(pipeline.working_dir) / "normalize" / "extracted",
                       *(Path(pipeline.working_dir) / "load" / stage for stage in ("new", "normalized", "loaded"))):
            for package in folder.glob("*") if folder.is_dir() else ():
                shutil.rmtree(package, ignore_errors=True)


def existing_tables(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = %s and table_name = any(%s)",
        (LANDING_SCHEMA, tables),
    ).fetchall()
    return [r[0] for r in rows]


def delete_batches(conn: psycopg.Connection, system: System, batch_ids: list[int]) -> int:
    """Remove every landed row of `batch_ids` from the system's landing tables; return rows removed."""
    if not batch_ids:
        return 0
    removed = 0
    tables = existing_tables(conn, [landing_table(system.id, e) for e in system.endpoints()])
    for table in tables:
        cursor = conn.execute(
            sql.SQL("delete from {} where _batch_id = any(%s)").format(sql.Identifier(LANDING_SCHEMA, table)),
            (batch_ids,),
        )
        removed += cursor.rowcount
    return removed


def delete_landing(conn: psycopg.Connection, system: System, batch_id: int, run_id: str, loaded_at: dt.datetime,
                   *, keep: bool) -> int:
    """Remove the rows of one landing of a batch (`keep=False`: the rows that landing wrote, after it failed),
    or every other row of the batch (`keep=True`: the old rows a forced re-land replaces, once its own rows
    are complete). A landing is told apart by the `_run_id` and `_loaded_at` its rows carry, so the old rows
    stay in place until the new ones are complete, and a failed re-land leaves them as they were."""
    removed = 0
    condition = "not (_run_id = %s and _loaded_at = %s)" if keep else "(_run_id = %s and _loaded_at = %s)"
    for table in existing_tables(conn, [landing_table(system.id, e) for e in system.endpoints()]):
        cursor = conn.execute(
            sql.SQL("delete from {} where _batch_id = %s and " + condition).format(
                sql.Identifier(LANDING_SCHEMA, table)),
            (batch_id, run_id, loaded_at),
        )
        removed += cursor.rowcount
    return removed


def delete_run_rows(conn: psycopg.Connection, system: System, rows_of: list[tuple[int, str]]) -> int:
    """Remove the rows that the given (batch id, Dagster run id) landings wrote: runs that died while
    re-landing a batch another run had landed before (the earlier landing's rows stay)."""
    removed = 0
    for table in existing_tables(conn, [landing_table(system.id, e) for e in system.endpoints()]):
        for batch_id, run_id in rows_of:
            cursor = conn.execute(
                sql.SQL("delete from {} where _batch_id = %s and _run_id = %s").format(
                    sql.Identifier(LANDING_SCHEMA, table)),
                (batch_id, run_id),
            )
            removed += cursor.rowcount
    return removed


def index_batches(conn: psycopg.Connection, table: str) -> None:
    """Index the batch columns of a landing table (dlt creates the table, without them): every later
    step finds a batch's rows (bronze, counts, the gate, clean-up) without reading the whole table."""
    for column in ("_batch_id", "_loaded_at"):
        conn.execute(sql.SQL("create index if not exists {} on {} ({})").format(
            sql.Identifier(f"{table}__{column.strip('_')}"), sql.Identifier(LANDING_SCHEMA, table),
            sql.Identifier(column)))


def count_batch_rows(conn: psycopg.Connection, table: str, batch_id: int) -> int:
    if not existing_tables(conn, [table]):
        return 0
    query = sql.SQL("select count(*) from {} where _batch_id = %s").format(sql.Identifier(LANDING_SCHEMA, table))
    return int(conn.execute(query, (batch_id,)).fetchone()[0])


def top_level_fields(conn: psycopg.Connection, table: str, batch_id: int) -> set[str]:
    """Every top-level field name found in a batch's records (to spot fields the source added)."""
    if not existing_tables(conn, [table]):
        return set()
    query = sql.SQL(
        "select distinct jsonb_object_keys(payload) from {} where _batch_id = %s and jsonb_typeof(payload) = 'object'"
    ).format(sql.Identifier(LANDING_SCHEMA, table))
    return {row[0] for row in conn.execute(query, (batch_id,))}
