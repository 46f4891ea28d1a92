"""Stage times of one pipeline run, from what Dagster and dbt record (no instrumentation of our code).

- landing, quality gate: STEP_START -> STEP_SUCCESS/FAILURE of the Dagster steps `landing_<system>` and
  `quality_<system>` (the whole step: audit rows, locks, dlt extract/normalize/load, counting).
- dbt_layers step: the same for the step that runs `dbt build`; it is split with dbt's run_results.json:
  bronze / silver / gold = wall time during which at least one model of that schema was compiling or
  executing (models of one layer run on several threads, so this is not the sum of their times);
  dbt tests = the same for data and unit tests; dbt other = the step minus the time any dbt node ran
  (dbt's start-up and manifest loading, Dagster's handling of dbt events, row counts and audit rows).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LAYERS = ("bronze", "silver", "gold")


def _ts(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals: wall time during which any of them ran."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


def step_windows(events: Iterable[tuple[str, str, float]]) -> dict[str, tuple[float, float]]:
    """{step key: (start, end) unix times} from (step_key, event type, unix timestamp) of STEP_START/SUCCESS/FAILURE
    events."""
    starts: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    for step_key, kind, timestamp in sorted(events, key=lambda e: e[2]):
        if kind == "STEP_START":
            starts[step_key] = timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step_key in starts:
            windows[step_key] = (starts.pop(step_key), timestamp)
    return windows


def step_seconds(events: Iterable[tuple[str, str, float]]) -> dict[str, float]:
    """{step key: seconds} from (step_key, event type, unix timestamp) of STEP_START/SUCCESS/FAILURE events."""
    return {step: end - start for step, (start, end) in step_windows(events).items()}


def find_run_results(target_dir: Path, dagster_run_id: str, *, since: float = 0.0) -> list[Path]:
    """The run_results.json of every dbt invocation of that Dagster run, oldest first.

    dagster-dbt gives each invocation its own target folder, `<op name>-<run id[:7]>-<random>`; an
    invocation that passes the run id in its vars is recognised by that too. `since` (a Unix time)
    drops older folders whose name happens to share the run id's prefix.
    """
    found = []
    for path in target_dir.glob("*/run_results.json"):
        try:
            if path.stat().st_mtime < since:
                continue
            by_name = f"-{dagster_run_id[:7]}-" in path.parent.name
            by_vars = not by_name and dagster_run_id in json.dumps(
                json.loads(path.read_text()).get("args", {}).get("vars", {})
            )
        except (OSError, ValueError):
            continue
        if by_name or by_vars:
            found.append(path)
    return sorted(found, key=lambda p: p.stat().st_mtime)


def merge_run_results(paths: Iterable[Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The results of several invocations as one run_results (elapsed times added) and one manifest."""
    merged: dict[str, Any] = {"results": [], "elapsed_time": 0.0}
    manifest: dict[str, Any] = {"nodes": {}}
    for path in paths:
        results = json.loads(path.read_text())
        merged["results"] += results.get("results", [])
        merged["elapsed_time"] += float(results.get("elapsed_time") or 0.0)
        manifest_path = path.parent / "manifest.json"
        if manifest_path.exists():
            manifest["nodes"].update(json.loads(manifest_path.read_text()).get("nodes", {}))
    return merged, manifest


def _node_layer(unique_id: str, manifest: dict[str, Any] | None) -> str:
    kind = unique_id.split(".", 1)[0]
    if kind in ("test", "unit_test"):
        return "dbt tests"
    node = (manifest or {}).get("nodes", {}).get(unique_id)
    schema = (node or {}).get("config", {}).get("schema") if node else None
    if schema in LAYERS:
        return str(schema)
    name = unique_id.rsplit(".", 1)[-1]
    for layer in LAYERS:
        if name.startswith(f"{layer}__"):
            return layer
    return "gold" if kind == "model" else "dbt tests"


def dbt_layer_seconds(run_results: dict[str, Any], manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Per layer (bronze/silver/gold/dbt tests): wall seconds, nodes, and the sum of node times; plus
    the wall time any node ran and dbt's own elapsed time."""
    intervals: dict[str, list[tuple[float, float]]] = {}
    node_sum: dict[str, float] = {}
    nodes: dict[str, dict[str, float]] = {}
    for result in run_results.get("results", []):
        timing = [t for t in result.get("timing", []) if t.get("started_at") and t.get("completed_at")]
        if not timing:
            continue
        start = min(_ts(t["started_at"]) for t in timing)
        end = max(_ts(t["completed_at"]) for t in timing)
        layer = _node_layer(result["unique_id"], manifest)
        intervals.setdefault(layer, []).append((start, end))
        node_sum[layer] = node_sum.get(layer, 0.0) + (end - start)
        nodes[result["unique_id"]] = {"seconds": end - start, "status": result.get("status")}
    every = [i for group in intervals.values() for i in group]
    return {
        "layers": {layer: union_seconds(intervals.get(layer, [])) for layer in (*LAYERS, "dbt tests")},
        "layer_node_sum": node_sum,
        "any_node_running": union_seconds(every),
        "dbt_elapsed": float(run_results.get("elapsed_time") or 0.0),
        "nodes": nodes,
    }
