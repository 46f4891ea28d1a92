"""The benchmark's figures: stage rows, the performance targets, and the printed tables."""

from __future__ import annotations

import re
from typing import Any

# (key, label, what the figure includes). Keys are stable: the JSON and the test use them.
PHASES = (("day1", "day 1 (first load)"), ("day2", "day 2 (1% of keys changed)"), ("rerun", "re-run (no new data)"),
          ("delta1", "delta entity, day 1 (all vehicles)"), ("delta2", "delta entity, day 2 (changed vehicles only)"),
          ("history", "day N (after N-1 batches)"))
PHASE_LABELS = {"day1": "day1", "day2": "day2", "rerun": "rerun", "delta1": "delta d1", "delta2": "delta d2",
                "history": "day N"}
PIPELINE_STAGES = (
    ("landing", "landing",
     "Dagster step landing_tst01: lock, audit rows, dlt extract+normalize+load of both endpoint files, row counts"),
    ("quality", "quality gate",
     "Dagster step quality_tst01: the Great Expectations gate on the batch's landing rows, audit rows"),
    ("bronze", "bronze", "dbt: wall time while any bronze model ran (models run on 4 threads)"),
    ("silver", "silver", "dbt: wall time while any silver model (scd2_history) ran"),
    ("gold", "gold", "dbt: wall time while the gold model ran"),
    ("dbt_tests", "dbt tests",
     "dbt: wall time while any data/unit test ran (dbt build runs them; may overlap models)"),
    ("dbt_other", "dbt other",
     "Dagster step dbt_layers minus the time any dbt node ran: dbt start-up, event handling, counts, audit"),
    ("whole_run", "whole run",
     "run_job end to end: the Dagster job in-process, all steps, closing the audit rows"),
    ("startup", "start-up",
     "process start to definitions loaded (imports, dbt codegen/parse check): paid by every CLI run"),
)
FLOOR_STAGES = (
    ("raw_copy", "raw COPY (floor)",
     "day 1's records as jsonb + batch columns, psycopg COPY FROM STDIN, incl. reading the files"),
    ("peer", "dlt peer",
     "plain dlt pipeline, default settings (nested data normalized into child tables), incl. json.load"),
)
STAGE_KEYS = [key for key, _, _ in FLOOR_STAGES] + [
    f"{phase}.{key}" for phase, _ in PHASES for key, _, _ in PIPELINE_STAGES
]
MEMORY_KEYS = ("raw_copy", "peer", "day1.whole_run", "day2.whole_run", "rerun.whole_run")


def label(key: str) -> str:
    names = {k: n for k, n, _ in FLOOR_STAGES + PIPELINE_STAGES}
    if "." not in key:
        return names[key]
    phase, stage = key.split(".", 1)
    return f"{PHASE_LABELS[phase]} {names[stage]}"


def legend() -> list[tuple[str, str]]:
    return [(n, what) for _, n, what in FLOOR_STAGES + PIPELINE_STAGES]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(sizes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The performance targets, evaluated at the largest size measured (they are set for 1M records)."""
    if not sizes:
        return []
    by_size = {int(k): v for k, v in sizes.items()}
    top = max(by_size)
    s = by_size[top]["stages"]
    sec = lambda key: s.get(key, {}).get("seconds")  # noqa: E731
    mem = by_size[top]["peak_mib"]
    out: list[dict[str, Any]] = []

    def add(name: str, target: str, value: float | None, limit: float, unit: str = "", note: str = "") -> None:
        out.append({"figure": name, "target": target, "value": value, "unit": unit, "size": top,
                    "met": None if value is None else value <= limit, "note": note})

    add("landing / raw COPY", "<= 2", _ratio(sec("day1.landing"), sec("raw_copy")), 2, "x")
    add("landing / dlt peer", "<= 1", _ratio(sec("day1.landing"), sec("peer")), 1, "x")
    add("whole first load / raw COPY", "<= 10", _ratio(sec("day1.whole_run"), sec("raw_copy")), 10, "x")
    add("day-2 silver / day-1 silver", "<= 0.25", _ratio(sec("day2.silver"), sec("day1.silver")), 0.25, "x")
    add("delta day-2 silver / day-1 silver", "<= 0.05", _ratio(sec("delta2.silver"), sec("day1.silver")), 0.05, "x",
        note="" if sec("delta2.silver") is not None else "delta workload not run")
    add("day-2 bronze / day-1 bronze", "<= 1", _ratio(sec("day2.bronze"), sec("day1.bronze")), 1, "x")
    add("day-N bronze / day-2 bronze (flat history)", "<= 1.1", _ratio(sec("history.bronze"), sec("day2.bronze")), 1.1,
        "x", note="" if sec("history.bronze") is not None else "needs --history-days 3 or more")
    add("day-N dbt other / day-2 dbt other (flat history)", "<= 1.1",
        _ratio(sec("history.dbt_other"), sec("day2.dbt_other")), 1.1, "x",
        note="" if sec("history.dbt_other") is not None else "needs --history-days 3 or more")
    add("re-run, no new data: whole run", "<= 5 s", sec("rerun.whole_run"), 5, "s")
    small = by_size.get(10_000)
    add("first load of 10k vehicles: whole run", "<= 8 s",
        small["stages"]["day1.whole_run"]["seconds"] if small else None, 8, "s",
        note="" if small else "needs size 10000")
    if small and top != 10_000:
        add("re-run at 10k: whole run", "<= 5 s", small["stages"]["rerun.whole_run"]["seconds"], 5, "s",
            note="at 10,000")
    add("peak memory (largest of all sizes)", "<= 512 MiB", max(v["peak_mib"] for v in by_size.values()), 512, "MiB")
    if 100_000 in by_size and top != 100_000:
        add("peak memory / peak at 100k", "<= 1.5", _ratio(mem, by_size[100_000]["peak_mib"]), 1.5, "x")
    else:
        add("peak memory / peak at 100k", "<= 1.5", None, 1.5, "x", note="needs sizes 100000 and a larger one")
    if 100_000 in by_size and top != 100_000:
        small = by_size[100_000]["stages"]["day1.whole_run"]["seconds"] / 100_000
        large = sec("day1.whole_run") / top
        add(f"time per record 100k -> {top // 1000:,}k (day-1 run)", "<= 1.3", large / small, 1.3, "x")
    else:
        add("time per record 100k -> 1,000k (day-1 run)", "<= 1.3", None, 1.3, "x",
            note="needs sizes 100000 and a larger one")
    return out


def _num(value: float | None, fmt: str) -> str:
    """Formatted, or a right-aligned dash of the same width when there is no figure."""
    width = int(re.match(r"\d*", fmt).group() or 0)
    return f"{'-':>{width}}" if value is None else format(value, fmt)


def step_peaks_text(step_peaks: dict[str, float | None]) -> str:
    """`landing_tst01 412, quality_tst01 480, dbt_layers 568` (MiB, in step order), or `-` when none was sampled."""
    return ", ".join(f"{step} {_num(mib, '.0f').strip()}" for step, mib in step_peaks.items()) or "-"


def size_table(size: int, data: dict[str, Any]) -> str:
    """One block of the stage x size table: a row per stage, the figures of one size."""
    recs = data["records"]
    head = (f"size {size:,}: day 1 = {recs['day1']:,} records ({recs['day1_vehicles']:,} vehicles + "
            f"{recs['day1'] - recs['day1_vehicles']:,} owners); day 2 = {recs['day2']:,} records, "
            f"{data['day2_changed_vehicle_keys']:,} vehicle keys changed ({data['day2_changed_share']:.2%})")
    lines = [head, f"{'stage':<28}{'seconds':>10}{'records/s':>12}{'x COPY':>9}{'x peer':>9}{'peak MiB':>10}"]
    for key in STAGE_KEYS:
        if key not in data["stages"]:  # a workload left out (day N with --history-days below 3)
            continue
        f = data["stages"][key]
        lines.append(f"{label(key):<28}{_num(f['seconds'], '10.2f')}{_num(f.get('records_per_s'), '12,.0f')}"
                     f"{_num(f.get('x_copy'), '9.2f')}{_num(f.get('x_peer'), '9.2f')}"
                     f"{_num(f.get('peak_mib'), '10.0f')}")
    lines.append(f"{'peak MiB of our pipeline':<28}{data['peak_mib']:>52.0f}")
    # Where each run's peak was: the workload process, or its children beside it (dbt; Dagster's compute-log
    # capture also starts a few small helper processes per step, ~10-40 MiB together).
    for phase, run in data.get("runs", {}).items():
        m = run.get("memory")
        if m:
            lines.append(f"  {PHASE_LABELS[phase]:<10} peak {run['peak_mib']:5.0f} MiB = process "
                         f"{m['process_at_tree_peak_mib']:4.0f} + children {m['children_at_tree_peak_mib']:4.0f};"
                         " own peaks:"
                         f" process {m['process_peak_mib']:4.0f}, children (log capture)"
                         f" {m['children_peak_mib']:4.0f}; by step: {step_peaks_text(m.get('step_peak_mib', {}))}")
    lines.append(f"(generation, not in any figure: {data['generation_seconds']:.1f} s)")
    return "\n".join(lines)


def matrix(sizes: dict[str, dict[str, Any]]) -> str:
    """Seconds, stage x size, all sizes side by side."""
    keys = sorted(sizes, key=int)
    lines = [f"{'seconds':<28}" + "".join(f"{int(k):>14,}" for k in keys)]
    for key in STAGE_KEYS:
        if not any(key in sizes[k]["stages"] for k in keys):
            continue
        lines.append(f"{label(key):<28}" + "".join(
            _num(sizes[k]["stages"].get(key, {}).get("seconds"), "14.2f") for k in keys))
    lines.append(f"{'peak MiB (pipeline)':<28}" + "".join(f"{sizes[k]['peak_mib']:>14.0f}" for k in keys))
    return "\n".join(lines)


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'performance target':<46}{'target':>14}{'measured':>14}  result"]
    for r in rows:
        unit = " " + r["unit"] if r["unit"] in ("s", "MiB") else "x"
        value = "-" if r["value"] is None else f"{r['value']:.2f}{unit}"
        result = "n/a" if r["met"] is None else ("met" if r["met"] else "MISSED")
        note = f" ({r['note']})" if r["note"] else f" (at {r['size']:,})"
        lines.append(f"{r['figure']:<46}{r['target']:>14}{value:>14}  {result}{note}")
    return "\n".join(lines)
