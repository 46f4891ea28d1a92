"""`python -m bench.run --sizes 10000,100000,1000000`: the pipeline's benchmark.

For each size (vehicles of the test system TST01; owners = size / 5), in a fresh database of one
PostgreSQL server (the embedded one in the benchmark's own state folder, or --url):

1. generate day 1 and day 2 (day 2: --change-rate of the keys changed) - timed, printed, not counted;
2. raw COPY of day 1's landing payloads (the floor), and a plain dlt pipeline loading day 1 (the peer);
3. our pipeline three times: day 1 (first load), day 2, and a re-run with no new data;

each workload in its own child process whose process tree (dbt included) is sampled for peak RSS.
Prints a stage x size table and the performance targets; writes the same figures as JSON to --out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
from psycopg import sql

from bench import report
from bench.memory import MIB, PeakRss

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HOME = REPO / "bench" / ".state"
DEFAULT_OUT = REPO / "bench" / "results"
DEFAULT_SIZES = "10000,100000,1000000"
HEARTBEAT_SECONDS = 30


class BenchError(RuntimeError):
    pass


def say(message: str) -> None:
    print(message, flush=True)


def database_url(server_url: str, database: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))


def recreate_database(server_url: str, database: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(database)))


def drop_database(server_url: str, database: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))


def run_child(task: str, params: dict[str, Any], *, env: dict[str, str], run_dir: Path, name: str,
              label: str) -> tuple[dict[str, Any], float, float]:
    """Run one workload in a child process; return (its result, peak MiB of its process tree, wall s).

    The result gets "memory": the workload process's and its children's (dbt's) share of that peak and
    each one's own peak (bench.memory.PeakRss.split)."""
    result_file, log_file = run_dir / "results" / f"{name}.json", run_dir / "logs" / f"{name}.log"
    result_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "bench.tasks", task, "--params", json.dumps(params), "--result", str(result_file)]
    started = time.monotonic()
    with log_file.open("w") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            with PeakRss(proc.pid) as peak:
                beat = started + HEARTBEAT_SECONDS
                while proc.poll() is None:
                    time.sleep(0.2)
                    if time.monotonic() >= beat:
                        say(f"    ... {label}: {time.monotonic() - started:.0f} s, {peak.last / MIB:.0f} MiB now")
                        beat += HEARTBEAT_SECONDS
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    wall = time.monotonic() - started
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        raise BenchError(f"{label} failed (exit {proc.returncode}); log {log_file}:\n{tail}")
    result = json.loads(result_file.read_text())
    windows = result.get("step_windows", {})  # a pipeline run's steps: the tree's peak while each ran
    step_peaks = {step: peak.peak_between(start, end) for step, (start, end) in windows.items()}
    return {**result, "memory": {**peak.split(), "step_peak_mib": step_peaks}}, peak.mib, wall


def _figure(seconds: float | None, records: int, *, copy: float | None, peer: float | None,
            peak_mib: float | None = None) -> dict[str, Any]:
    """One stage's figures; seconds None: the stage did not run (a re-run whose dbt step had nothing to build)."""
    return {"seconds": seconds, "records": records, "records_per_s": records / seconds if records and seconds else None,
            "x_copy": seconds / copy if copy and seconds is not None else None,
            "x_peer": seconds / peer if peer and seconds is not None else None, "peak_mib": peak_mib}


def pipeline_stages(run: dict[str, Any], records: int, *, copy: float, peer: float, peak_mib: float,
                    phase: str) -> dict[str, dict[str, Any]]:
    """The stage figures of one pipeline run, from its step times and dbt's run results."""
    if not run["success"]:
        raise BenchError(f"{phase}: the pipeline run failed (steps {run['failed_steps']}); see its log")
    steps, dbt = run["steps"], run["dbt"]
    if dbt is None and run["batches"]:
        raise BenchError(f"{phase}: no dbt run_results.json for Dagster run {run['dagster_run_id']}")
    if dbt is None:  # nothing landed and nothing waiting: the dbt step did not start dbt (its time is dbt other)
        dbt = {"layers": {k: None for k in ("bronze", "silver", "gold", "dbt tests")}, "any_node_running": 0.0}

    def step(prefix: str) -> float:
        found = [v for k, v in steps.items() if k == prefix or k.startswith(prefix + "_")]
        if len(found) != 1:
            raise BenchError(f"{phase}: expected one Dagster step {prefix}*, found {sorted(steps)}")
        return float(found[0])

    ran = dbt.get("layer_node_sum", {})  # a layer with no node in this run (the delta system has no gold): None
    seconds = {"landing": step("landing"), "quality": step("quality"),
               **{k: dbt["layers"][k] if k in ran else None for k in ("bronze", "silver", "gold")},
               "dbt_tests": dbt["layers"]["dbt tests"] if "dbt tests" in ran else None,
               "dbt_other": step("dbt_layers") - dbt["any_node_running"],
               "whole_run": run["whole_seconds"], "startup": run["startup_seconds"]}
    return {key: _figure(value, records, copy=copy, peer=peer, peak_mib=peak_mib if key == "whole_run" else None)
            for key, value in seconds.items()}


def bench_size(server_url: str, size: int, *, home: Path, change_rate: float, seed: int, keep: bool,
               prefix: str, history_days: int) -> dict[str, Any]:
    database = f"bench_{size}"
    url = database_url(server_url, database)
    run_dir = home / "runs" / str(size)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    recreate_database(server_url, database)
    from warehouse.connection import platform_url
    from warehouse.migrations import migrate

    migrate(url)
    # The children connect as the platform does (the owner role, on the embedded server), not as the superuser.
    from bench.tasks import DELTA_SYSTEM_ID, LATER_DIR, SOURCE_DIR, write_metadata

    # Its own metadata (TST01 and the delta system) and so its own copy of the dbt project: the models generated
    # from that metadata never replace the ones of the checkout, which a test or a run may be using meanwhile.
    dbt_project = run_dir / "dbt_project"
    shutil.copytree(REPO / "dbt_project", dbt_project,
                    ignore=shutil.ignore_patterns("target", "logs", "generated", ".user.yml"))
    env = {**os.environ, "DATAPLATFORM_HOME": str(run_dir), "DAGSTER_HOME": str(run_dir / "dagster"),
           "DATAPLATFORM_DATABASE_URL": platform_url(url), "PYTHONUNBUFFERED": "1",
           "DATAPLATFORM_METADATA_DIR": str(write_metadata(run_dir / "metadata")),
           "DATAPLATFORM_DBT_PROJECT_DIR": str(dbt_project)}
    (run_dir / "dagster").mkdir()

    def child(
        task: str, name: str, label: str, params: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], float, float]:
        return run_child(task, params or {}, env=env, run_dir=run_dir, name=name, label=f"{prefix} {label}")

    say(f"{prefix} size {size:,}: generating day 1 and day 2 (vehicles {size:,}, owners {max(1, size // 5):,}) ...")
    gen, _, _ = child("generate", "generate", "generate", {"size": size, "change_rate": change_rate, "seed": seed,
                                                           "history_days": history_days})
    day1, day2, *later = gen["days"]
    changed = sum(v for k, v in day2["vehicle_changes"].items())
    say(f"{prefix}   generated in {gen['seconds']:.1f} s (not counted); day 2 changes {changed:,} vehicle keys "
        f"({changed / day1['vehicles']:.2%}): {day2['vehicle_changes']}")
    records = {"day1": day1["vehicles"] + day1["owners"], "day1_vehicles": day1["vehicles"],
               "day2": day2["vehicles"] + day2["owners"], "rerun": 0,
               "delta1": day1["delta_vehicles"], "delta2": day2["delta_vehicles"],
               "history": later[-1]["vehicles"] + later[-1]["owners"] if later else 0}

    say(f"{prefix}   raw COPY ...")
    copy, copy_mib, _ = child("copy", "copy", "raw COPY")
    say(f"{prefix}   raw COPY: {copy['seconds']:.2f} s ({copy['rows']})")
    say(f"{prefix}   dlt peer ...")
    peer, peer_mib, _ = child("peer", "peer", "dlt peer")
    say(f"{prefix}   dlt peer: {peer['seconds']:.2f} s ({peer['rows']})")

    stages: dict[str, dict[str, Any]] = {
        "raw_copy": _figure(copy["seconds"], records["day1"], copy=copy["seconds"], peer=peer["seconds"],
                            peak_mib=copy_mib),
        "peer": _figure(peer["seconds"], records["day1"], copy=copy["seconds"], peer=peer["seconds"],
                        peak_mib=peer_mib),
    }
    runs: dict[str, Any] = {}
    expected = {"day1": [day1["folder"]], "day2": [day2["folder"]], "rerun": [], "delta1": [day1["folder"]],
                "delta2": [day2["folder"]], "history": [later[-1]["folder"]] if later else []}
    systems = {"delta1": DELTA_SYSTEM_ID, "delta2": DELTA_SYSTEM_ID}
    for phase, title in report.PHASES:
        if phase == "history":
            if not later:
                continue
            for day in later:  # days 3..N, one batch each; the last one is measured
                os.replace(run_dir / LATER_DIR / day["folder"], run_dir / SOURCE_DIR / day["folder"])
                if day is later[-1]:
                    break
                say(f"{prefix}   our pipeline, day {day['folder']} (history, not measured) ...")
                child("pipeline", f"history-{day['folder']}", f"history {day['folder']}")
            title = f"day {len(later) + 2} (after {len(later) + 1} batches)"
        say(f"{prefix}   our pipeline, {title} ...")
        run, mib, wall = child("pipeline", phase, title, {"system": systems[phase]} if phase in systems else None)
        landed = [b["source_ref"] for b in run["batches"]]
        if landed != expected[phase]:
            raise BenchError(f"{phase}: expected the run to land {expected[phase]}, it landed {landed}")
        figures = pipeline_stages(run, records[phase], copy=copy["seconds"], peer=peer["seconds"], peak_mib=mib,
                                  phase=phase)
        stages.update({f"{phase}.{k}": v for k, v in figures.items()})
        runs[phase] = {**run, "process_wall_seconds": wall, "peak_mib": mib}
        parts = ", ".join(
            f"{k} {'-' if figures[k]['seconds'] is None else format(figures[k]['seconds'], '.1f')}"
            for k in ("landing", "quality", "bronze", "silver", "gold")
        )
        memory = run["memory"]
        say(f"{prefix}   {title}: whole run {figures['whole_run']['seconds']:.1f} s ({parts}); "
            f"process {wall:.1f} s; peak {mib:.0f} MiB (at that moment: process "
            f"{memory['process_at_tree_peak_mib']:.0f} + children (log capture) "
            f"{memory['children_at_tree_peak_mib']:.0f}; own peaks: process {memory['process_peak_mib']:.0f}, "
            f"children {memory['children_peak_mib']:.0f}; by step: {report.step_peaks_text(memory['step_peak_mib'])})")

    if not keep:
        drop_database(server_url, database)
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"records": records, "generation_seconds": gen["seconds"], "generated": gen["days"],
            "day2_changed_vehicle_keys": changed, "day2_changed_share": changed / day1["vehicles"],
            "raw_copy_rows": copy["rows"], "peer_rows": peer["rows"], "stages": stages,
            "peak_mib": max(r["peak_mib"] for r in runs.values()), "runs": runs, "database": database}


def machine(server_url: str) -> dict[str, Any]:
    from importlib.metadata import version

    with psycopg.connect(server_url) as conn:
        server = conn.execute("select version()").fetchone()[0]
    return {"cpus": os.cpu_count(), "memory_mib": psutil.virtual_memory().total / MIB, "platform": platform.platform(),
            "python": platform.python_version(), "postgres": server,
            "packages": {p: version(p) for p in ("dlt", "dbt-core", "dbt-postgres", "dagster", "psycopg")}}


def check_home(home: Path) -> None:
    """Never run in the user's platform state: the benchmark drops and recreates what it uses."""
    forbidden = {REPO / ".dataplatform", Path.cwd() / ".dataplatform"}
    if os.environ.get("DATAPLATFORM_HOME"):
        forbidden.add(Path(os.environ["DATAPLATFORM_HOME"]))
    if home.resolve() in {p.resolve() for p in forbidden}:
        raise BenchError(f"--home {home} is the platform's own state folder; give the benchmark its own")


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or min(sizes) < 10 or max(sizes) >= 10**7:
        raise argparse.ArgumentTypeError("sizes: a comma list of vehicle counts between 10 and 9,999,999")
    return sizes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes(DEFAULT_SIZES),
                   help=f"comma list of vehicle counts (default {DEFAULT_SIZES})")
    p.add_argument("--home", type=Path, default=Path(os.environ.get("DATAPLATFORM_BENCH_HOME") or DEFAULT_HOME),
                   help="the benchmark's state folder: its embedded PostgreSQL, sources, dlt and Dagster state "
                        "(default bench/.state or $DATAPLATFORM_BENCH_HOME)")
    p.add_argument("--url", help="use this PostgreSQL server (a database bench_<size> is created on it per size) "
                                 "instead of starting the embedded one")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the JSON results (default bench/results)")
    p.add_argument("--change-rate", type=float, default=0.01, help="share of keys changed on day 2 (default 0.01)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--history-days", type=int, default=10,
                   help="deliveries of the history workload: after the other workloads, days 3..N are landed one run "
                        "each and day N is measured (default 10; below 3 leaves the workload out)")
    p.add_argument("--keep", action="store_true", help="keep each size's database and files (for profiling)")
    args = p.parse_args(argv)

    home = args.home.absolute()
    try:
        check_home(home)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DATAPLATFORM_HOME"] = str(home)  # where open_warehouse keeps the embedded server
    if not args.url:
        os.environ.pop("DATAPLATFORM_DATABASE_URL", None)
    from warehouse.embedded import open_warehouse, redact_url

    started = dt.datetime.now()
    out_file = args.out / f"{started:%Y%m%dT%H%M%S}.json"
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started_at": started.isoformat(timespec="seconds"), "sizes": {},
                               "settings": {"sizes": args.sizes, "change_rate": args.change_rate, "seed": args.seed,
                                            "history_days": args.history_days},
                               "stage_keys": report.STAGE_KEYS,
                               "legend": {name: what for name, what in report.legend()}}
    timer = time.monotonic()
    server = contextlib.nullcontext(args.url) if args.url else open_warehouse(echo=say)
    try:
        with server as server_url:
            results["machine"] = machine(server_url)
            say(f"benchmark on {redact_url(server_url)}: sizes {', '.join(f'{s:,}' for s in args.sizes)}; "
                f"{results['machine']['cpus']} CPUs, {results['machine']['memory_mib']:.0f} MiB RAM")
            for i, size in enumerate(args.sizes, start=1):
                began = time.monotonic()
                prefix = f"[{i}/{len(args.sizes)}]"
                results["sizes"][str(size)] = bench_size(server_url, size, home=home, change_rate=args.change_rate,
                                                         seed=args.seed, keep=args.keep, prefix=prefix,
                                                         history_days=args.history_days)
                results["sizes"][str(size)]["bench_seconds"] = time.monotonic() - began
                say(f"{prefix} size {size:,} done in {time.monotonic() - began:.0f} s")
                out_file.write_text(json.dumps(results, indent=2, default=str))  # partial results survive a stop
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    results["targets"] = report.targets(results["sizes"])
    results["seconds"] = time.monotonic() - timer
    out_file.write_text(json.dumps(results, indent=2, default=str))

    say("")
    for size in args.sizes:
        say(report.size_table(size, results["sizes"][str(size)]))
        say("")
    if len(args.sizes) > 1:
        say(report.matrix(results["sizes"]))
        say("")
    say(report.targets_table(results["targets"]))
    say("")
    say("what each figure includes:")
    for name, what in report.legend():
        say(f"  {name}: {what}")
    say(f"\nresults: {out_file}  (benchmark took {results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
