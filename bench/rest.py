"""`python -m bench.rest [--records 100000] [--pages 1000]`: the REST workload of the benchmark.

A loopback HTTP server (its own process, bodies encoded before timing starts) serves `--records` nested records
over `--pages` pages linked by a JSON next link. Measured, each in its own child process (peak RSS of that
process sampled, import time not counted):

- floor: a plain `requests` session fetching every page (its bytes, not parsed): the least any client pays;
- ours: the platform's landing of one batch: the rest_api connector (dlt's REST client) and the landing writer
  (Arrow tables -> dlt -> PostgreSQL COPY into landing's JSONB), as `dataplatform run` lands it, without the
  Dagster and audit bookkeeping around it;
- peer: a plain dlt `rest_api` source into PostgreSQL, as a user would write it (default settings: dlt
  normalizes the records into columns and a child table).

Ours also runs with a tenth of the pages (same records per page) to show whether its peak memory grows with
the number of pages. PostgreSQL: the embedded server in the benchmark's state folder, or `--url`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO / "bench" / ".state"
DATABASE = "bench_rest"


# ------------------------------------------------------------------------------------------ the server


def _record(number: int) -> dict[str, Any]:
    return {"id": number, "name": f"item {number}", "updated_at": f"2026-01-01T{number % 86400 // 3600:02d}:00:00Z",
            "amount": number * 1.25, "address": {"city": f"city {number % 97}", "zip": f"{number % 99999:05d}"},
            "tags": [{"tag": "a"}, {"tag": f"t{number % 13}"}]}


def _serve(port_queue: Any, records: int, pages: int) -> None:
    per_page = records // pages
    bodies: list[bytes] = []
    for page in range(1, pages + 1):
        data = [_record(n) for n in range((page - 1) * per_page + 1, page * per_page + 1)]
        bodies.append(json.dumps({"data": data, "next": f"/items?page={page + 1}" if page < pages else None}).encode())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: every client reuses its connection
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            page = int(self.path.partition("page=")[2] or 1)
            body = bodies[page - 1]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


@contextlib.contextmanager
def api(records: int, pages: int) -> Any:
    queue: Any = multiprocessing.get_context("fork").Queue()
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(queue, records, pages), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{queue.get(timeout=120)}"
    finally:
        process.terminate()
        process.join()


# ------------------------------------------------------------------------------------------ the workloads

# What a pipeline run imports lazily on its first run: imported before timing, for ours and the peer alike
# (a real run pays it once per process, with Dagster's start-up; the figure is the landing itself).
WARM = ("dlt.extract", "dlt.normalize", "dlt.load", "dlt.destinations.impl.postgres.postgres",
        "dlt.destinations.impl.postgres.factory", "dlt.common.libs.pyarrow", "dlt.sources.helpers.rest_client",
        "dlt.sources.rest_api", "pyarrow.parquet", "pyarrow.csv", "psycopg2")


def _warm() -> None:
    import importlib

    for name in WARM:
        importlib.import_module(name)


def floor(base_url: str, url: str, pages: int) -> dict[str, Any]:
    import requests

    started = time.perf_counter()
    size = 0
    with requests.Session() as session:
        for page in range(1, pages + 1):
            size += len(session.get(f"{base_url}/items?page={page}", timeout=60).content)
    return {"seconds": time.perf_counter() - started, "bytes": size}


def ours(base_url: str, url: str, pages: int) -> dict[str, Any]:
    import psycopg

    from ingestion.connectors import CursorReached, PendingLoad
    from ingestion.landing import LOADER_FILE_FORMAT, Batch, forget_run, landing_pipeline, landing_source
    from metadata.models import System, parse_connection

    connection = {"base_url": base_url, "endpoints": {"items": {
        "path": "/items", "records_path": "data", "paginator": {"type": "json_link"}, "max_pages": pages + 1}}}
    system = System(id="BRS01", name="bench", description="bench", type="rest_api", connection=connection)
    now = dt.datetime.now(dt.UTC)
    load = PendingLoad(now.isoformat(), now)
    batch = Batch(1, system.id, load.source_ref, now, "bench", now)
    home = Path(os.environ["DATAPLATFORM_HOME"])
    pipeline = landing_pipeline(system.id, url, pipelines_dir=home / "rest-ours-dlt")
    _warm()
    with psycopg.connect(url, autocommit=True) as conn:  # dlt's stored schema knows the table: empty, not dropped
        if conn.execute("select to_regclass('landing.brs01_items')").fetchone()[0]:
            conn.execute("truncate landing.brs01_items")
    started = time.perf_counter()
    pipeline.run(landing_source(system, batch=batch, load=load, reached=CursorReached(),
                                connection=parse_connection("rest_api", connection, resolved=True), base_dir=home),
                 loader_file_format=LOADER_FILE_FORMAT)
    seconds = time.perf_counter() - started
    forget_run(pipeline)
    with psycopg.connect(url) as conn:
        rows = conn.execute("select count(*) from landing.brs01_items").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def peer(base_url: str, url: str, pages: int) -> dict[str, Any]:
    import dlt
    import psycopg
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {"base_url": base_url, "paginator": {"type": "json_link", "next_url_path": "next"}},
        "resources": [{"name": "items", "endpoint": {"path": "items", "data_selector": "data"}}],
    })
    home = Path(os.environ["DATAPLATFORM_HOME"])
    pipeline = dlt.pipeline(pipeline_name="bench_rest_peer", destination=dlt.destinations.postgres(credentials=url),
                            dataset_name="bench_rest_peer", pipelines_dir=str(home / "rest-peer-dlt"))
    _warm()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists bench_rest_peer cascade")
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    with psycopg.connect(url) as conn:
        rows = conn.execute("select count(*) from bench_rest_peer.items").fetchone()[0]
    return {"seconds": seconds, "rows": rows}


TASKS = {"floor": floor, "ours": ours, "peer": peer}


# ------------------------------------------------------------------------------------------ driving


def child(task: str, base_url: str, url: str, pages: int, env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """One workload in its own process; its result and the peak RSS of its process tree (MiB)."""
    from bench.memory import PeakRss

    command = [sys.executable, "-m", "bench.rest", "--task", task, "--api", base_url, "--url", url,
               "--pages", str(pages)]
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with PeakRss(proc.pid) as peak:
        out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed (exit {proc.returncode}):\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1]), peak.mib


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.rest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--pages", type=int, default=1_000)
    p.add_argument("--url", help="PostgreSQL server to use (a database bench_rest is created on it) instead of the "
                                 "embedded one in the benchmark's state folder")
    p.add_argument("--home", type=Path, default=Path(os.environ.get("DATAPLATFORM_BENCH_HOME") or DEFAULT_HOME))
    p.add_argument("--task", choices=sorted(TASKS), help=argparse.SUPPRESS)
    p.add_argument("--api", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.task:  # a child: one workload, its result as the last line
        print(json.dumps(TASKS[args.task](args.api, args.url, args.pages)))
        return 0

    home = args.home.absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DATAPLATFORM_HOME"] = str(home)
    if not args.url:
        os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    from bench.run import database_url, drop_database, recreate_database
    from warehouse.connection import platform_url
    from warehouse.embedded import open_warehouse
    from warehouse.migrations import migrate

    server = contextlib.nullcontext(args.url) if args.url else open_warehouse()
    with server as server_url:
        recreate_database(server_url, DATABASE)
        url = database_url(server_url, DATABASE)
        migrate(url)
        env = {**os.environ, "DATAPLATFORM_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        owner = platform_url(url)
        figures: dict[str, tuple[dict[str, Any], float]] = {}
        with api(args.records, args.pages) as base_url:
            for task in ("floor", "ours", "peer"):
                figures[task] = child(task, base_url, owner, args.pages, env)
                print(f"{task}: {figures[task][0]['seconds']:.2f} s, peak {figures[task][1]:.0f} MiB", flush=True)
        few = max(1, args.pages // 10)
        with api(args.records // 10, few) as base_url:
            figures["ours_tenth"] = child("ours", base_url, owner, few, env)
        drop_database(server_url, DATABASE)

    floor_s, ours_s, peer_s = (figures[t][0]["seconds"] for t in ("floor", "ours", "peer"))
    print(f"\nREST workload: {args.records:,} records over {args.pages:,} pages (loopback)")
    print(f"  floor (plain client, fetch only) {floor_s:8.2f} s   peak {figures['floor'][1]:6.0f} MiB")
    print(f"  ours (landing)                   {ours_s:8.2f} s   peak {figures['ours'][1]:6.0f} MiB   "
          f"{ours_s / floor_s:.2f}x the floor (target <= 1.5x), {ours_s / peer_s:.2f}x the peer (target < 1x); "
          f"{figures['ours'][0]['rows']:,} rows")
    print(f"  peer (plain dlt rest_api)        {peer_s:8.2f} s   peak {figures['peer'][1]:6.0f} MiB   "
          f"{figures['peer'][0]['rows']:,} rows")
    print(f"  ours with {few:,} pages of the same size: peak {figures['ours_tenth'][1]:.0f} MiB "
          f"(memory flat in the number of pages: compare with {figures['ours'][1]:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
