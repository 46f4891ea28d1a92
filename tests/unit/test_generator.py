"""Unit tests for the TST01 generator: the demo, ingestion tests and benchmarks trust its output."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ingestion.test_system.generator import Day, KeyChanges, generate, simulate, write_day

REPO = Path(__file__).resolve().parents[2]
KINDS = ("inserted", "scd1_updated", "scd2_updated", "options_changed", "deleted")


def _files(root: Path) -> dict[str, bytes]:
    """All files under root by relative path, to compare whole deliveries byte for byte."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _diff(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Top-level fields whose values differ between two versions of a record."""
    return {f for f in old.keys() | new.keys() if old.get(f) != new.get(f)}


def _check_transition(prev: Day, day: Day) -> None:
    """Assert that ``day`` is exactly ``prev`` with the reported changes applied, and nothing else."""
    for entity, kinds in (("vehicles", KINDS), ("owners", [k for k in KINDS if k != "options_changed"])):
        before, after = getattr(prev, entity), getattr(day, entity)
        ch: KeyChanges[Any] = getattr(day.changes, entity)
        sets = [getattr(ch, k) for k in kinds]
        assert all(sets), f"{entity}: every change kind occurs ({[len(s) for s in sets]})"
        assert sum(map(len, sets)) == len(frozenset().union(*sets)), f"{entity}: change sets are disjoint"
        assert not ch.inserted & before.keys() and min(ch.inserted) > max(before), "inserts continue numbering"
        assert ch.deleted <= before.keys()
        assert after.keys() == (before.keys() - ch.deleted) | ch.inserted
        updated = ch.scd1_updated | ch.scd2_updated | ch.options_changed
        for key in before.keys() - ch.deleted - updated:
            assert after[key] == before[key], f"untouched {key} unchanged"
        for key in updated:
            assert after[key][entity[:-1] + "_id"] == key
        if entity == "vehicles":
            for key in ch.scd1_updated:
                assert _diff(before[key], after[key]) == {"mileage_km"}
                assert after[key]["mileage_km"] > before[key]["mileage_km"]
            for key in ch.scd2_updated:
                changed = _diff(before[key], after[key])
                assert changed in ({"color"}, {"owner"}), changed
                if changed == {"owner"}:
                    assert after[key]["owner"]["owner_id"] != before[key]["owner"]["owner_id"]
                    assert after[key]["owner"]["since"] == day.date.isoformat()
            for key in ch.options_changed:
                assert _diff(before[key], after[key]) == {"options"}
                old = {o["code"] for o in before[key]["options"]}
                assert len(old ^ {o["code"] for o in after[key]["options"]}) == 1, "one option added or removed"
        else:
            for key in ch.scd1_updated:
                assert _diff(before[key], after[key]) == {"email"}
            for key in ch.scd2_updated:
                assert _diff(before[key], after[key]) == {"address"}
                old, new = before[key]["address"], after[key]["address"]
                assert old["city"] != new["city"] and old["street"] == new["street"]


def _check_valid(day: Day) -> None:
    """Schema and referential integrity of one day's snapshot."""
    assert list(day.owners) == sorted(day.owners) and list(day.vehicles) == sorted(day.vehicles)
    for oid, owner in day.owners.items():
        assert owner["owner_id"] == oid and set(owner["address"]) == {"street", "city", "postcode"}
        assert re.fullmatch(r"[a-z.]+\d+@[a-z.]+", owner["email"])
        assert re.fullmatch(r"\d{5}", owner["address"]["postcode"])
    for vid, v in day.vehicles.items():
        assert v["vehicle_id"] == vid and re.fullmatch(r"V\d{7}", vid)
        assert len(v["vin"]) == 17 and v["vin"].isalnum() and v["vin"].isupper()
        assert isinstance(v["year"], int) and isinstance(v["mileage_km"], int) and v["mileage_km"] >= 0
        assert v["owner"]["owner_id"] in day.owners, f"{vid} references a missing owner"
        assert date.fromisoformat(v["owner"]["since"]) <= day.date
        codes = [o["code"] for o in v["options"]]
        assert 0 <= len(codes) <= 4 and codes == sorted(set(codes))
        assert all(round(o["price"], 2) == o["price"] for o in v["options"])


def test_day1_inserts_everything_with_requested_counts() -> None:
    day = next(simulate(days=1, vehicles=50, owners=20))
    assert day.date == date(2026, 1, 1)
    assert len(day.vehicles) == 50 and len(day.owners) == 20
    assert list(day.vehicles)[:2] == ["V0000001", "V0000002"] and list(day.owners)[:2] == [1, 2]
    assert day.changes.vehicles == KeyChanges(inserted=frozenset(day.vehicles))
    assert day.changes.owners == KeyChanges(inserted=frozenset(day.owners))


@pytest.mark.parametrize("seed", range(25))
def test_day2_has_every_change_kind_applied_exactly(seed: int) -> None:
    day1, day2 = simulate(days=2, seed=seed)
    _check_valid(day1)
    _check_valid(day2)
    _check_transition(day1, day2)


@pytest.mark.parametrize(("vehicles", "owners", "rate"), [(50, 20, 0.1), (300, 40, 0.3), (2000, 500, 0.05)])
def test_every_day_is_valid_and_a_faithful_transition(vehicles: int, owners: int, rate: float) -> None:
    days = list(simulate(days=8, seed=7, vehicles=vehicles, owners=owners, change_rate=rate))
    assert [d.date.day for d in days] == list(range(1, 9))
    _check_valid(days[0])
    for prev, day in itertools.pairwise(days):
        _check_valid(day)
        _check_transition(prev, day)


def test_change_volume_follows_rate() -> None:
    day = list(simulate(days=2, vehicles=10_000, owners=5_000, change_rate=0.1))[1]
    assert len(day.changes.vehicles.inserted) == len(day.changes.vehicles.deleted) == 200  # 10% over 5 kinds
    assert len(day.changes.owners.scd1_updated) == 125  # 10% over 4 kinds


def test_zero_change_rate_repeats_the_snapshot() -> None:
    day1, day2 = simulate(days=2, change_rate=0)
    assert (day2.owners, day2.vehicles) == (day1.owners, day1.vehicles)
    assert not any(getattr(day2.changes.vehicles, k) for k in KINDS)


def test_day_does_not_depend_on_how_many_days_are_requested() -> None:
    assert list(simulate(days=3))[2] == list(simulate(days=6))[2]


def test_invalid_arguments_are_rejected() -> None:
    for kwargs in ({"days": 0}, {"days": 1, "vehicles": 0}, {"days": 1, "change_rate": 1.5}):
        with pytest.raises(ValueError):
            next(simulate(**kwargs))


def test_written_files_hold_exactly_the_day_state(tmp_path: Path) -> None:
    day = list(simulate(days=2))[1]
    folder = write_day(day, tmp_path)
    assert folder == tmp_path / "2026-01-02"
    assert sorted(p.name for p in folder.iterdir()) == ["owners.json", "vehicles.json"]
    assert json.loads((folder / "owners.json").read_text()) == list(day.owners.values())
    assert json.loads((folder / "vehicles.json").read_text()) == list(day.vehicles.values())


def test_same_seed_is_byte_identical_across_processes_and_different_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", days=3, seed=42)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}  # other set/str-hash order
    result = subprocess.run(
        [sys.executable, "-m", "ingestion.test_system.generator", "--out", str(tmp_path / "b"), "--days", "3"],
        env=env, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'b' / d} owners=20 vehicles=50 written" for d in ("2026-01-01", "2026-01-02", "2026-01-03")]
    generate(tmp_path / "c", days=3, seed=43)
    a, b, c = (_files(tmp_path / x) for x in "abc")
    assert len(a) == 6 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    assert list(simulate(days=2, seed=42))[1].changes != list(simulate(days=2, seed=43))[1].changes


def test_generate_is_idempotent(tmp_path: Path) -> None:
    paths = generate(tmp_path, days=3, start=date(2026, 3, 30))
    assert paths == [tmp_path / d for d in ("2026-03-30", "2026-03-31", "2026-04-01")]
    before = _files(tmp_path)
    for p in tmp_path.rglob("*.json"):
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))  # an old mtime reveals any rewrite
    tampered = paths[1] / "owners.json"
    tampered.write_text("[]\n")
    assert generate(tmp_path, days=3, start=date(2026, 3, 30)) == paths
    assert _files(tmp_path) == before, "same content again, no stray temp files"
    rewritten = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.json") if p.stat().st_mtime_ns != 10**9}
    assert rewritten == {"2026-03-31"}, "only the tampered day is written again"
