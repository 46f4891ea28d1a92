"""The benchmark's workloads, each run in its own child process by bench/run.py.

A child process per workload so that (1) its peak memory is its own (the generator's 1 GiB or the
peer's parsed JSON never count against our pipeline), and (2) each pipeline run pays what a real
`dataplatform run` pays: importing Dagster and loading the definitions (reported as start-up).

Run as `python -m bench.tasks TASK --params JSON --result FILE`; the result is a JSON object.
Environment: DATAPLATFORM_HOME (the size's state folder), DAGSTER_HOME and DATAPLATFORM_DATABASE_URL
(the size's database) are set by bench/run.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

SYSTEM_ID = "TST01"
ENDPOINTS = ("owners", "vehicles")  # the endpoint files of one TST01 delivery
SOURCE_DIR = Path("sources") / SYSTEM_ID  # under DATAPLATFORM_HOME, as metadata/declarations/systems.json says
LATER_DIR = Path("later") / SYSTEM_ID  # days 3.. of the history, moved into SOURCE_DIR one at a time
DELTA_SYSTEM_ID = "TSD01"  # the same vehicles as a delta entity: day 2 delivers only the changed records
DELTA_SOURCE_DIR = Path("sources") / DELTA_SYSTEM_ID
FLOOR_SCHEMA = "bench_floor"
PEER_DATASET = "bench_peer"


def _home() -> Path:
    return Path(os.environ["DATAPLATFORM_HOME"])


def _url() -> str:
    return os.environ["DATAPLATFORM_DATABASE_URL"]


def day_folders() -> list[Path]:
    return sorted(p for p in (_home() / SOURCE_DIR).iterdir() if p.is_dir() and not p.name.startswith("."))


def generate(params: dict[str, Any]) -> dict[str, Any]:
    """Day 1 and day 2 of TST01 into the size's source folder; day 2 changes ~change_rate of the keys.

    The generator splits change_rate over its vehicle change kinds (insert, SCD1 update, SCD2 update,
    options changed, delete: change_rate/5 of the keys each), so ~change_rate of vehicle keys change.
    Days 3..history_days go to a folder aside (LATER_DIR): bench/run.py moves each into the source folder
    before the run that lands it, after the re-run that must find nothing new. The delta system TSD01
    gets day 1's vehicles and, for day 2, only the vehicles that changed (new and updated; a delta delivery
    carries no record of a deleted key).
    """
    from ingestion.test_system.generator import _json_array, simulate, write_day

    size, owners = int(params["size"]), max(1, int(params["size"]) // 5)
    history = max(2, int(params.get("history_days", 2)))
    started = time.perf_counter()
    days = []
    for index, day in enumerate(simulate(days=history, seed=int(params.get("seed", 42)), vehicles=size, owners=owners,
                                         change_rate=float(params["change_rate"]))):
        target = _home() / (SOURCE_DIR if index < 2 else LATER_DIR)
        folder = write_day(day, target)
        changes = {kind: len(keys) for kind, keys in vars(day.changes.vehicles).items()}
        owner_changes = {kind: len(keys) for kind, keys in vars(day.changes.owners).items()}
        days.append({"folder": folder.name, "vehicles": len(day.vehicles), "owners": len(day.owners),
                     "vehicle_changes": changes, "owner_changes": owner_changes,
                     "bytes": {e: (folder / f"{e}.json").stat().st_size for e in ENDPOINTS}})
        if index < 2:  # the delta system: everything on day 1, the changed records on day 2
            changed = set().union(*(keys for kind, keys in vars(day.changes.vehicles).items() if kind != "deleted"))
            records = day.vehicles.values() if index == 0 else (r for k, r in day.vehicles.items() if k in changed)
            delta_folder = _home() / DELTA_SOURCE_DIR / folder.name
            delta_folder.mkdir(parents=True, exist_ok=True)
            with (delta_folder / "vehicles.json").open("w", encoding="utf-8", newline="\n") as f:
                f.writelines(_json_array(records))
            days[-1]["delta_vehicles"] = len(day.vehicles) if index == 0 else len(changed)
    return {"seconds": time.perf_counter() - started, "days": days}


def write_metadata(folder: Path) -> Path:
    """The platform's declarations plus the delta system TSD01 (its vehicles as a delta entity), into `folder`
    (the children get it as DATAPLATFORM_METADATA_DIR)."""
    from metadata.catalog import metadata_folder

    folder.mkdir(parents=True, exist_ok=True)
    source = metadata_folder()
    systems = json.loads((source / "systems.json").read_text())
    entities = json.loads((source / "entities.json").read_text())
    systems["systems"].append({
        "id": DELTA_SYSTEM_ID, "name": "Car registry, changes only (benchmark)",
        "description": "The vehicles of TST01 as a delta delivery: all on day 1, the changed records on day 2.",
        "type": "json_files",
        "connection": {"path": str(DELTA_SOURCE_DIR), "endpoints": {"vehicles": "vehicles.json"}},
    })
    entities["entities"].append({
        "name": "vehicle_delta", "description": "A registered vehicle, delivered as changes only.",
        "system_id": DELTA_SYSTEM_ID, "load_type": "delta", "landing_entity": "vehicles",
        "bronze_pattern": {"type": "flatten"}, "model": "metadata.entity_models.tst01:Vehicle",
        "quality": {"row_count": {"min": 1, "max": 10000000}},
    })
    (folder / "systems.json").write_text(json.dumps(systems, indent=2))
    (folder / "entities.json").write_text(json.dumps(entities, indent=2))
    if (source / "actions.json").exists():
        (folder / "actions.json").write_text((source / "actions.json").read_text())
    return folder


def _json_lines(path: Path):  # type: ignore[no-untyped-def]
    """The records of a generator file as JSON text, without parsing: the generator writes one record
    per line (`[`, `{...},`, ..., `{...}`, `]`). That is the floor: PostgreSQL parses the jsonb."""
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line in ("[", "]", ""):
                continue
            if line.endswith(","):
                line = line[:-1]
            if not line.startswith("{"):
                raise ValueError(f"{path}: expected one JSON record per line, got {line[:40]!r}")
            yield line


def copy_floor(params: dict[str, Any]) -> dict[str, Any]:
    """Raw COPY: day 1's records with the landing's batch columns, into tables shaped like landing's.

    Timed: reading the files and one `COPY ... FROM STDIN` per endpoint, committed. Not timed:
    creating the (empty) tables. The tables have the columns our landing writes for a record
    (`_batch_id, _batch_timestamp, _run_id, _loaded_at, _record_no, payload jsonb`), not dlt's own
    `_dlt_load_id`/`_dlt_id` (and its unique index), which are overhead a landing could avoid.
    """
    import psycopg

    folder = day_folders()[0]
    batch_ts = dt.datetime.fromisoformat(folder.name).replace(tzinfo=dt.UTC)
    loaded_at = dt.datetime.now(dt.UTC)
    columns = "_batch_id, _batch_timestamp, _run_id, _loaded_at, _record_no, payload"
    rows: dict[str, int] = {}
    with psycopg.connect(_url()) as conn:
        conn.execute(f"drop schema if exists {FLOOR_SCHEMA} cascade")
        conn.execute(f"create schema {FLOOR_SCHEMA}")
        for endpoint in ENDPOINTS:
            conn.execute(
                f"create table {FLOOR_SCHEMA}.tst01_{endpoint} (_batch_id bigint not null,"
                " _batch_timestamp timestamptz not null, _run_id varchar not null, _loaded_at timestamptz not null,"
                " _record_no bigint not null, payload jsonb)"
            )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for endpoint in ENDPOINTS:
                n = 0
                with cur.copy(f"copy {FLOOR_SCHEMA}.tst01_{endpoint} ({columns}) from stdin") as copy:
                    for n, text in enumerate(_json_lines(folder / f"{endpoint}.json"), start=1):
                        copy.write_row((1, batch_ts, "bench-floor", loaded_at, n, text))
                rows[endpoint] = n
        conn.commit()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows}


def peer(params: dict[str, Any]) -> dict[str, Any]:
    """A plain dlt pipeline as a user would write it without this platform: default settings
    (default normalizer: nested objects become columns, nested lists child tables; default file
    format), day 1's files read with json.load, one run, into its own dataset of the same database.

    Timed: reading and parsing the files, and `pipeline.run` (extract, normalize, load). Not timed:
    importing dlt. Its working folder is in the size's state folder, not ~/.dlt.
    """
    import dlt
    import psycopg

    folder = day_folders()[0]
    with psycopg.connect(_url(), autocommit=True) as conn:
        conn.execute(f"drop schema if exists {PEER_DATASET} cascade")
    started = time.perf_counter()
    pipeline = dlt.pipeline(pipeline_name="bench_peer", destination=dlt.destinations.postgres(credentials=_url()),
                            dataset_name=PEER_DATASET, pipelines_dir=str(_home() / "peer-dlt"))
    resources = []
    for endpoint in ENDPOINTS:
        with (folder / f"{endpoint}.json").open("rb") as f:
            resources.append(dlt.resource(json.load(f), name=endpoint))
    pipeline.run(resources)
    seconds = time.perf_counter() - started
    with psycopg.connect(_url()) as conn:
        tables = conn.execute(
            "select table_name from information_schema.tables"
            " where table_schema = %s and table_name not like '\\_dlt%%' order by table_name",
            (PEER_DATASET,),
        ).fetchall()
        rows = {t: conn.execute(f'select count(*) from {PEER_DATASET}."{t}"').fetchone()[0] for (t,) in tables}
    return {"seconds": seconds, "rows": rows}


def pipeline(params: dict[str, Any]) -> dict[str, Any]:
    """One run of the platform's TST01 job (or params["system"]'s), in-process, as `dataplatform run --system
    TST01` does it.

    start-up = from this process's start through importing and loading the Dagster definitions (which
    regenerates dbt files and parses the project if it changed); whole run = `run_job` end to end;
    stage times from the run's Dagster step events and dbt's run_results.json (see bench/timings.py).
    """
    import psutil

    from warehouse.connection import export_warehouse_env

    export_warehouse_env(_url())
    import dagster as dg

    from codegen.dbt_files import DBT_PROJECT_DIR
    from orchestration.definitions import platform_definitions
    from orchestration.execute import run_job

    platform_definitions()  # the definitions load: part of every run's start-up

    from bench.timings import dbt_layer_seconds, find_run_results, merge_run_results, step_seconds, step_windows

    startup = time.time() - psutil.Process().create_time()
    run_started, started = time.time(), time.perf_counter()
    outcome = run_job(system_id=params.get("system", SYSTEM_ID), echo=lambda line: print(line, flush=True))
    whole = time.perf_counter() - started
    instance = dg.DagsterInstance.get()
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    events = [(r.step_key, r.dagster_event.event_type_value, r.timestamp)
              for r in instance.all_logs(outcome.dagster_run_id, of_type=kinds) if r.dagster_event and r.step_key]
    steps = step_seconds(events)
    windows = step_windows(events)  # the parent finds each step's peak memory in its samples of these windows
    paths = find_run_results(DBT_PROJECT_DIR / "target", outcome.dagster_run_id, since=run_started - 5)
    dbt: dict[str, Any] | None = None
    if paths:
        run_results, manifest = merge_run_results(paths)
        dbt = dbt_layer_seconds(run_results, manifest)
        dbt["run_results"] = [str(p) for p in paths]
    batches = [{"batch_id": r.batch_id, "source_ref": r.source_ref} for r in outcome.system_runs]
    return {"success": outcome.success, "failed_steps": outcome.failed_steps, "dagster_run_id": outcome.dagster_run_id,
            "startup_seconds": startup, "whole_seconds": whole, "steps": steps, "step_windows": windows, "dbt": dbt,
            "batches": batches}


TASKS = {"generate": generate, "copy": copy_floor, "peer": peer, "pipeline": pipeline}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("--params", default="{}")
    p.add_argument("--result", type=Path, required=True)
    args = p.parse_args()
    result = TASKS[args.task](json.loads(args.params))
    args.result.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
