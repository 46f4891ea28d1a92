"""`python -m bench.sql [--rows 1000000]`: the SQL workload of the benchmark.

A source database `bench_sql_source` on the same server holds a table shaped like the test system's vehicles plus
a JSON column (`--rows` rows, generated in SQL before timing starts). Measured, each in its own child process
(peak RSS of that process sampled, import time not counted):

- floor: `COPY (SELECT to_jsonb(v) ...) TO STDOUT` of the source piped into `COPY ... FROM STDIN` of a
  landing-shaped table (batch columns + jsonb payload): the least landing as JSON can cost;
- ours: the platform's landing of one batch: the sql_database connector (dlt's table loader, a server-side
  cursor, the value encoding) and the landing writer (Arrow tables -> dlt -> COPY into landing's JSONB), as
  `dataplatform run` lands it, without the Dagster and audit bookkeeping around it;
- peer: a plain dlt `sql_database` source into PostgreSQL with default settings (as a user would write it);
- cdc: the same table read by change data capture: after its snapshot batch, 1% of its rows are updated and the
  changes landed (the pgoutput read, the decoding, the landing writer, the slot released), compared with ours.

Ours also runs on a tenth of the rows, to show whether its peak memory grows with the table. PostgreSQL: the
embedded server in the benchmark's state folder, or `--url`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO / "bench" / ".state"
DATABASE, SOURCE = "bench_sql", "bench_sql_source"

SOURCE_DDL = """
drop table if exists vehicles;
create table vehicles (id bigint primary key, vin text not null, make text not null, model text not null,
                       year integer not null, colour text, mileage_km integer, price numeric(12, 2) not null,
                       registered date not null, updated_at timestamptz not null, specs jsonb not null);
insert into vehicles
select n, 'VIN' || lpad(n::text, 14, '0'), (array['Volvo', 'Saab', 'Fiat', 'Kia'])[n % 4 + 1], 'model ' || n % 50,
       1990 + n % 35, (array['red', 'blue', null])[n % 3 + 1], n % 300000, (n % 100000) / 100.0 + 0.50,
       date '2020-01-01' + n % 2000, timestamptz '2026-01-01T00:00:00Z' + n * interval '1 second',
       jsonb_build_object('seats', n % 7 + 1, 'weight', 1000 + n % 900 + 0.25,
                          'options', jsonb_build_array('a', n % 13))
from generate_series(1, %(rows)s) as n;
analyze vehicles;
"""


WARM = ("dlt.extract", "dlt.normalize", "dlt.load", "dlt.destinations.impl.postgres.postgres",
        "dlt.destinations.impl.postgres.factory", "dlt.common.libs.pyarrow", "dlt.sources.sql_database",
        "pyarrow.parquet", "psycopg2", "sqlalchemy.dialects.postgresql.psycopg")


def _warm() -> None:
    import importlib

    for name in WARM:
        importlib.import_module(name)


def floor(url: str, source: str, rows: int) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists bench_sql_floor cascade")
        conn.execute("create schema bench_sql_floor")
        conn.execute("create table bench_sql_floor.vehicles (_batch_id bigint not null, _batch_timestamp timestamptz"
                     " not null, _run_id varchar not null, _loaded_at timestamptz not null, _record_no bigint not null,"
                     " payload jsonb)")
    select = ("copy (select 1, now(), 'bench', now(), row_number() over (), to_jsonb(v) from (select * from vehicles"
              f" limit {int(rows)}) v) to stdout")
    started = time.perf_counter()
    with psycopg.connect(source) as src, psycopg.connect(url) as dst:
        with src.cursor().copy(select) as out, dst.cursor().copy("copy bench_sql_floor.vehicles from stdin") as into:
            for data in out:
                into.write(data)
        dst.commit()
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        count = conn.execute("select count(*) from bench_sql_floor.vehicles").fetchone()[0]
    return {"seconds": seconds, "rows": count}


def ours(url: str, source: str, rows: int) -> dict[str, Any]:
    import psycopg

    from ingestion.connectors import CursorReached, PendingLoad
    from ingestion.landing import LOADER_FILE_FORMAT, Batch, forget_run, landing_pipeline, landing_source
    from metadata.models import System, parse_connection

    query = f"select * from vehicles where id <= {int(rows)}"
    connection = {"url": source, "endpoints": {"vehicles": {"query": query}}}
    system = System(id="BSQ01", name="bench", description="bench", type="sql_database", connection=connection)
    now = dt.datetime.now(dt.UTC)
    load = PendingLoad(now.isoformat(), now)
    batch = Batch(1, system.id, load.source_ref, now, "bench", now)
    home = Path(os.environ["DATAPLATFORM_HOME"])
    pipeline = landing_pipeline(system.id, url, pipelines_dir=home / "sql-ours-dlt")
    _warm()
    with psycopg.connect(url, autocommit=True) as conn:  # dlt's stored schema knows the table: empty, not dropped
        if conn.execute("select to_regclass('landing.bsq01_vehicles')").fetchone()[0]:
            conn.execute("truncate landing.bsq01_vehicles")
    started = time.perf_counter()
    pipeline.run(landing_source(system, batch=batch, load=load, reached=CursorReached(),
                                connection=parse_connection("sql_database", connection, resolved=True), base_dir=home),
                 loader_file_format=LOADER_FILE_FORMAT)
    seconds = time.perf_counter() - started
    forget_run(pipeline)
    with psycopg.connect(url) as conn:
        count = conn.execute("select count(*) from landing.bsq01_vehicles").fetchone()[0]
    return {"seconds": seconds, "rows": count}


def peer(url: str, source: str, rows: int) -> dict[str, Any]:
    import dlt
    import psycopg
    from dlt.sources.sql_database import sql_table

    home = Path(os.environ["DATAPLATFORM_HOME"])
    table = sql_table(credentials=source.replace("postgresql://", "postgresql+psycopg://", 1), table="vehicles")
    pipeline = dlt.pipeline(pipeline_name="bench_sql_peer", destination=dlt.destinations.postgres(credentials=url),
                            dataset_name="bench_sql_peer", pipelines_dir=str(home / "sql-peer-dlt"))
    _warm()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists bench_sql_peer cascade")
    started = time.perf_counter()
    pipeline.run(table)  # the whole source table (the peer runs at the full size only)
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        count = conn.execute("select count(*) from bench_sql_peer.vehicles").fetchone()[0]
    return {"seconds": seconds, "rows": count}


def cdc(url: str, source: str, rows: int) -> dict[str, Any]:
    """Landing 1% of the table's rows changed, read by change data capture: the snapshot batch is taken first (not
    timed: it is a full read), then every hundredth row is updated (not timed), then the changes are landed as
    `dataplatform run` lands a batch, and the slot released (timed)."""
    import psycopg

    from ingestion.connectors import CursorReached, PendingLoad, connector_for
    from ingestion.connectors.sql_cdc import drop_slot
    from ingestion.landing import LOADER_FILE_FORMAT, Batch, forget_run, landing_pipeline, landing_source
    from metadata.models import SqlDatabaseConnection, System, parse_connection

    declared = {"url": source, "endpoints": {"vehicles": {"table": "public.vehicles", "load": "cdc"}}}
    system = System(id="BSQ02", name="bench", description="bench", type="sql_database", connection=declared)
    connection = parse_connection("sql_database", declared, resolved=True)
    assert isinstance(connection, SqlDatabaseConnection)
    connector = connector_for("sql_database")
    home = Path(os.environ["DATAPLATFORM_HOME"])
    drop_slot(connection, system.id, "vehicles")
    snapshot = CursorReached()
    now = dt.datetime.now(dt.UTC)
    for _ in connector.raw_records(connection, "vehicles", PendingLoad("snapshot", now, {}, system.id),
                                   base_dir=home, reached=snapshot):
        pass
    with psycopg.connect(source, autocommit=True) as conn:
        changed = conn.execute("update vehicles set mileage_km = mileage_km + 1, updated_at = updated_at + interval "
                               "'1 day' where mod(id, 100) = 0").rowcount
    now = dt.datetime.now(dt.UTC)
    load = PendingLoad(now.isoformat(), now, snapshot.values, system.id)
    batch = Batch(2, system.id, load.source_ref, now, "bench", now)
    pipeline = landing_pipeline(system.id, url, pipelines_dir=home / "sql-cdc-dlt")
    _warm()
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select to_regclass('landing.bsq02_vehicles')").fetchone()[0]:
            conn.execute("truncate landing.bsq02_vehicles")
    reached = CursorReached()
    try:
        started = time.perf_counter()
        pipeline.run(landing_source(system, batch=batch, load=load, reached=reached, connection=connection,
                                    base_dir=home), loader_file_format=LOADER_FILE_FORMAT)
        connector.release(system.id, connection, reached.values, base_dir=home)  # type: ignore[attr-defined]
        seconds = time.perf_counter() - started
    finally:
        forget_run(pipeline)
        drop_slot(connection, system.id, "vehicles")
    with psycopg.connect(url) as conn:
        count = conn.execute("select count(*) from landing.bsq02_vehicles").fetchone()[0]
    return {"seconds": seconds, "rows": count, "changed": changed}


TASKS = {"floor": floor, "ours": ours, "peer": peer, "cdc": cdc}


def child(task: str, url: str, source: str, rows: int, env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """One workload in its own process; its result and the peak RSS of its process tree (MiB)."""
    from bench.memory import PeakRss

    command = [sys.executable, "-m", "bench.sql", "--task", task, "--url", url, "--source", source,
               "--rows", str(rows)]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakRss(proc.pid) as peak:
        out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed (exit {proc.returncode}):\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1]), peak.mib


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sql", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--url", help="PostgreSQL server to use (databases bench_sql and bench_sql_source are created "
                                 "on it) instead of the embedded one in the benchmark's state folder")
    p.add_argument("--home", type=Path, default=Path(os.environ.get("DATAPLATFORM_BENCH_HOME") or DEFAULT_HOME))
    p.add_argument("--task", choices=sorted(TASKS), help=argparse.SUPPRESS)
    p.add_argument("--source", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.task:  # a child: one workload, its result as the last line
        print(json.dumps(TASKS[args.task](args.url, args.source, args.rows)))
        return 0

    home = args.home.absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DATAPLATFORM_HOME"] = str(home)
    if not args.url:
        os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    import psycopg

    from bench.run import database_url, drop_database, recreate_database
    from warehouse.connection import platform_url
    from warehouse.embedded import open_warehouse
    from warehouse.migrations import migrate

    server = contextlib.nullcontext(args.url) if args.url else open_warehouse()
    with server as server_url:
        recreate_database(server_url, DATABASE)
        recreate_database(server_url, SOURCE)
        url, source = database_url(server_url, DATABASE), database_url(server_url, SOURCE)
        started = time.perf_counter()
        with psycopg.connect(source) as conn:
            conn.execute(SOURCE_DDL.replace("%(rows)s", str(int(args.rows))))
        print(f"source: {args.rows:,} rows generated in {time.perf_counter() - started:.1f} s (not counted)",
              flush=True)
        migrate(url)
        env = {**os.environ, "DATAPLATFORM_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        owner = platform_url(url)
        figures: dict[str, tuple[dict[str, Any], float]] = {}
        for task in ("floor", "ours", "peer"):
            figures[task] = child(task, owner, source, args.rows, env)
            print(f"{task}: {figures[task][0]['seconds']:.2f} s, peak {figures[task][1]:.0f} MiB", flush=True)
        tenth = max(1, args.rows // 10)
        figures["ours_tenth"] = child("ours", owner, source, tenth, env)
        figures["cdc"] = child("cdc", owner, source, args.rows, env)
        drop_database(server_url, DATABASE)
        drop_database(server_url, SOURCE)

    floor_s, ours_s, peer_s = (figures[t][0]["seconds"] for t in ("floor", "ours", "peer"))
    print(f"\nSQL workload: {args.rows:,} rows of vehicles (+ a jsonb column), a second database on the same server")
    print(f"  floor (COPY out -> COPY in)      {floor_s:8.2f} s   peak {figures['floor'][1]:6.0f} MiB")
    print(f"  ours (landing)                   {ours_s:8.2f} s   peak {figures['ours'][1]:6.0f} MiB   "
          f"{ours_s / floor_s:.2f}x the floor (target <= 2x), {ours_s / peer_s:.2f}x the peer (target < 1x); "
          f"{figures['ours'][0]['rows']:,} rows")
    print(f"  peer (plain dlt sql_database)    {peer_s:8.2f} s   peak {figures['peer'][1]:6.0f} MiB   "
          f"{figures['peer'][0]['rows']:,} rows")
    print(f"  ours on {tenth:,} rows: peak {figures['ours_tenth'][1]:.0f} MiB (memory flat in the table's size: "
          f"compare with {figures['ours'][1]:.0f} MiB; target <= 512 MiB)")
    cdc_s, cdc_result = figures["cdc"][0]["seconds"], figures["cdc"][0]
    print(f"  cdc: {cdc_result['changed']:,} rows changed (1%), landed as {cdc_result['rows']:,} change records in "
          f"{cdc_s:.2f} s, peak {figures['cdc'][1]:.0f} MiB: {cdc_s / ours_s:.3f}x the full load's landing "
          "(target <= 0.05x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
