"""`python -m bench.files_csv --rows 1000000 --files 10`: the CSV workload of the `files` connector.

The same CSV files (`--rows` rows over `--files` files, a header and six columns, some fields quoted with
the delimiter and a line break inside) are loaded three ways into one PostgreSQL database, each in its own
child process whose process tree is sampled for peak memory:

- COPY (floor): `COPY ... FROM STDIN (FORMAT csv, HEADER)` of each file's bytes into a table of text
  columns (psycopg);
- reader + COPY jsonb: the connector's CSV reader, its JSON texts written by `COPY ... FROM STDIN` into a
  table shaped like a landing table (batch columns + jsonb payload): the floor of a landing that keeps
  every record as JSON, without dlt;
- dlt peer: a plain dlt filesystem pipeline, `filesystem(...) | read_csv()` (pandas, dlt's default
  settings), into its own dataset;
- our landing: the platform's landing writer for a `files` system (the connector's CSV reader -> Arrow ->
  dlt -> COPY into jsonb), as the landing asset runs it, without Dagster and the audit rows around it.

Timed: reading the files and loading them, committed; not timed: imports, generating the files, creating
empty tables. Runs in its own state folder (`--home`, default bench/.state-files: an embedded PostgreSQL of
its own, never `.dataplatform/`) or on `--url`. Prints a table; `--out` gets the same figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO / "bench" / ".state-files"
SYSTEM_ID = "CSV01"
ENDPOINT = "rows"
COLUMNS = ("id", "name", "city", "amount", "created_at", "note")
DATABASE = "bench_files_csv"


def _home() -> Path:
    return Path(os.environ["DATAPLATFORM_HOME"])


def _url() -> str:
    return os.environ["DATAPLATFORM_DATABASE_URL"]


def _folder() -> Path:
    return _home() / "sources" / SYSTEM_ID


def generate(params: dict[str, Any]) -> dict[str, Any]:
    """`rows` rows over `files` CSV files; every 50th name holds the delimiter, every 100th note a line break."""
    rows, files = int(params["rows"]), int(params["files"])
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    per_file, written = -(-rows // files), 0
    for number in range(files):
        with (folder / f"part-{number:03d}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for i in range(written, min(rows, written + per_file)):
                name = f"Name {i}, Jr." if i % 50 == 0 else f"Name {i}"
                note = "two\nlines" if i % 100 == 0 else ""
                writer.writerow((i, name, f"City {i % 977}", f"{i % 10000}.{i % 100:02d}",
                                 f"2026-01-{1 + i % 28:02d}T10:{i % 60:02d}:00Z", note))
            written = min(rows, written + per_file)
    return {"rows": written, "bytes": sum(p.stat().st_size for p in folder.glob("*.csv"))}


def copy_floor(params: dict[str, Any]) -> dict[str, Any]:
    """COPY of each file's bytes, as PostgreSQL's own CSV parser reads them, into text columns."""
    import psycopg

    with psycopg.connect(_url()) as conn:
        conn.execute("drop schema if exists bench_copy cascade")
        conn.execute("create schema bench_copy")
        conn.execute(f"create table bench_copy.rows ({', '.join(f'{c} text' for c in COLUMNS)})")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for path in sorted(_folder().glob("*.csv")):
                with path.open("rb") as f, cur.copy("copy bench_copy.rows from stdin (format csv, header true)") as cp:
                    while chunk := f.read(1 << 20):
                        cp.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("select count(*) from bench_copy.rows").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def copy_jsonb(params: dict[str, Any]) -> dict[str, Any]:
    """The connector's CSV reader straight into a landing-shaped table by COPY (no dlt, no Arrow)."""
    import psycopg

    from ingestion.connectors.file_readers import csv_records
    from metadata.models import CsvOptions

    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(_url()) as conn:
        conn.execute("drop schema if exists bench_copy_jsonb cascade")
        conn.execute("create schema bench_copy_jsonb")
        conn.execute("create table bench_copy_jsonb.rows (_batch_id bigint not null, _batch_timestamp timestamptz"
                     " not null, _run_id varchar not null, _loaded_at timestamptz not null, _record_no bigint not null,"
                     " payload jsonb)")
        conn.commit()
        started = time.perf_counter()
        n = 0
        with conn.cursor() as cur, cur.copy("copy bench_copy_jsonb.rows from stdin") as cp:
            for path in sorted(_folder().glob("*.csv")):
                with path.open("rb") as f:
                    for text in csv_records(f, CsvOptions(), str(path)):
                        n += 1
                        cp.write_row((1, now, "bench", now, n, text))
        conn.commit()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": n}


def peer(params: dict[str, Any]) -> dict[str, Any]:
    """A plain dlt filesystem pipeline, as dlt's docs write it: `filesystem() | read_csv()`, default settings."""
    import dlt
    import psycopg
    from dlt.sources.filesystem import filesystem, read_csv

    with psycopg.connect(_url(), autocommit=True) as conn:
        conn.execute("drop schema if exists bench_peer_csv cascade")
    started = time.perf_counter()
    pipeline = dlt.pipeline(pipeline_name="bench_peer_csv", destination=dlt.destinations.postgres(credentials=_url()),
                            dataset_name="bench_peer_csv", pipelines_dir=str(_home() / "peer-dlt"))
    pipeline.run((filesystem(bucket_url=str(_folder()), file_glob="*.csv") | read_csv()).with_name("rows"))
    seconds = time.perf_counter() - started
    with psycopg.connect(_url()) as conn:
        rows = conn.execute("select count(*) from bench_peer_csv.rows").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def ours(params: dict[str, Any]) -> dict[str, Any]:
    """The landing writer on a `files` system over the folder: what the landing asset runs for one batch."""
    import psycopg

    from ingestion.connectors import CursorReached, connector_for
    from ingestion.landing import LOADER_FILE_FORMAT, Batch, landing_pipeline, landing_source
    from metadata.models import System, parse_connection

    system = System(id=SYSTEM_ID, name="bench", description="bench", type="files", connection={
        "path": str(_folder()), "settle_seconds": 0, "endpoints": {ENDPOINT: {"glob": "*.csv", "format": "csv"}}})
    connection = parse_connection(system.type, system.connection)
    with psycopg.connect(_url(), autocommit=True) as conn:
        conn.execute("drop table if exists landing.csv01_rows")
    started = time.perf_counter()
    load = connector_for("files").next_load(SYSTEM_ID, connection, landed=set(), cursors={}, base_dir=_home())
    assert load is not None
    now = dt.datetime.now(dt.UTC)
    batch = Batch(1, SYSTEM_ID, load.source_ref, load.timestamp, "bench-files", now)
    reached = CursorReached()
    pipeline = landing_pipeline(SYSTEM_ID, _url(), pipelines_dir=_home() / "dlt")
    pipeline.run(landing_source(system, batch=batch, load=load, reached=reached, connection=connection,
                                base_dir=_home()), loader_file_format=LOADER_FILE_FORMAT)
    seconds = time.perf_counter() - started
    with psycopg.connect(_url()) as conn:
        rows = conn.execute("select count(*) from landing.csv01_rows").fetchone()[0]
    return {"seconds": seconds, "rows": rows, "cursor": reached.values.get(ENDPOINT)}


TASKS = {"generate": generate, "copy": copy_floor, "copy_jsonb": copy_jsonb, "peer": peer, "ours": ours}


def _child(task: str, params: dict[str, Any], env: dict[str, str], logs: Path) -> tuple[dict[str, Any], float]:
    from bench.memory import PeakRss

    result = logs / f"{task}.json"
    with (logs / f"{task}.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bench.files_csv", "--task", task, "--params",
                                 json.dumps(params), "--result", str(result)], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        with PeakRss(proc.pid) as peak:
            while proc.poll() is None:
                time.sleep(0.2)
    if proc.returncode != 0:
        raise SystemExit(f"{task} failed; see {logs / f'{task}.log'}")
    return json.loads(result.read_text()), peak.mib


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.files_csv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--files", type=int, default=10)
    p.add_argument("--home", type=Path, default=DEFAULT_HOME)
    p.add_argument("--url", help="a PostgreSQL server to use (database bench_files_csv is recreated on it)")
    p.add_argument("--out", type=Path, help="write the figures as JSON to this file")
    p.add_argument("--tasks", default="copy,copy_jsonb,peer,ours", help="workloads to run (copy must be one)")
    p.add_argument("--task", choices=sorted(TASKS), help=argparse.SUPPRESS)
    p.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.task:  # a child process: one workload
        args.result.write_text(json.dumps(TASKS[args.task](json.loads(args.params)), default=str))
        return 0

    home = args.home.absolute()
    if home == (REPO / ".dataplatform").absolute():
        raise SystemExit("--home is the platform's own state folder; give the benchmark its own")
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DATAPLATFORM_HOME"] = str(home)
    if not args.url:
        os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    from bench.run import database_url, recreate_database
    from warehouse.embedded import open_warehouse
    from warehouse.migrations import migrate

    server = contextlib.nullcontext(args.url) if args.url else open_warehouse(echo=print)
    figures: dict[str, Any] = {"rows": args.rows, "files": args.files}
    with server as server_url:
        recreate_database(server_url, DATABASE)
        url = database_url(server_url, DATABASE)
        migrate(url)
        env = {**os.environ, "DATAPLATFORM_HOME": str(home), "DATAPLATFORM_DATABASE_URL": url}
        logs = home / "logs"
        logs.mkdir(exist_ok=True)
        params = {"rows": args.rows, "files": args.files}
        figures["generate"], _ = _child("generate", params, env, logs)
        for task in args.tasks.split(","):
            result, peak = _child(task, params, env, logs)
            figures[task] = {**result, "peak_mib": peak}
            print(f"  {task}: {result['seconds']:.1f} s, {result['rows']:,} rows, peak {peak:.0f} MiB", flush=True)
    floor = figures["copy"]["seconds"]
    peer_s = figures["peer"]["seconds"] if "peer" in figures else float("nan")
    print(f"\n{args.rows:,} rows in {args.files} files ({figures['generate']['bytes'] / 2**20:.0f} MiB of CSV)")
    print(f"{'workload':<14}{'seconds':>9}{'rows/s':>11}{'x COPY':>8}{'x peer':>8}{'peak MiB':>10}")
    labels = (("copy", "COPY (floor)"), ("copy_jsonb", "reader+COPY"), ("peer", "dlt peer"), ("ours", "our landing"))
    for task, label in labels:
        if task not in figures:
            continue
        f = figures[task]
        print(f"{label:<14}{f['seconds']:>9.1f}{f['rows'] / f['seconds']:>11,.0f}{f['seconds'] / floor:>8.2f}"
              f"{f['seconds'] / peer_s:>8.2f}{f['peak_mib']:>10.0f}")
    ours_s = figures["ours"]["seconds"] if "ours" in figures else float("nan")
    print(f"targets: <= 2x COPY: {'met' if ours_s <= 2 * floor else 'MISSED'} ({ours_s / floor:.2f}x); "
          f"faster than the peer: {'met' if ours_s < peer_s else 'MISSED'} ({ours_s / peer_s:.2f}x)")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
