"""Generator for TST01, the platform's fictional car-registry source system.

TST01 delivers one folder per day with FULL snapshots (owners.json, vehicles.json). It exists so
ingestion (change detection, SCD1/SCD2, deletes, nested options) can be demoed, tested by value and
benchmarked: output is deterministic from a seed and ``simulate`` reports which keys changed how.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

K = TypeVar("K", int, str)
Record = dict[str, Any]

# make -> (VIN manufacturer prefix, models)
MAKES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Audi": ("WAU", ("A3", "A4", "Q5")), "BMW": ("WBA", ("118i", "320d", "X3")), "Ford": ("WF0", ("Focus", "Kuga")),
    "Skoda": ("TMB", ("Fabia", "Octavia")), "Toyota": ("JTD", ("Corolla", "Yaris")),
    "Volkswagen": ("WVW", ("Golf", "Passat", "Polo")), "Volvo": ("YV1", ("V60", "XC40", "XC90"))}
MAKE_NAMES = tuple(MAKES)
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # real VINs never use I, O, Q
COLORS = ("black", "blue", "green", "grey", "red", "silver", "white", "yellow")
# Option records are shared by all vehicles and never mutated: saves memory at 1M vehicles.
OPTIONS: tuple[Record, ...] = tuple({"code": c, "name": n, "price": p} for c, n, p in (
    ("AHK", "Tow bar", 849.5), ("HUD", "Head-up display", 1150.0), ("LED", "LED headlights", 1290.0),
    ("NAV", "Navigation system", 1490.99), ("PAN", "Panoramic roof", 1790.0), ("PDC", "Parking sensors", 499.0),
    ("SHZ", "Heated seats", 399.95), ("WPK", "Winter package", 749.25)))  # sorted by code
FIRST = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Mia", "Paul")
LAST = ("Bauer", "Fischer", "Keller", "Koch", "Meyer", "Richter", "Schmidt", "Wagner", "Weber", "Wolf")
STREETS = ("Bahnhofstrasse", "Birkenweg", "Gartenstrasse", "Hauptstrasse", "Lindenallee", "Ringstrasse")
CITIES = (("Berlin", "10"), ("Bremen", "28"), ("Dresden", "01"), ("Hamburg", "20"), ("Koeln", "50"),
          ("Leipzig", "04"), ("Muenchen", "80"), ("Stuttgart", "70"))  # (city, postcode prefix)
DOMAINS = ("example.com", "example.net", "example.org")
VEHICLE_KINDS, OWNER_KINDS = 5, 4  # change kinds sharing each day's change budget
ENTITIES = ("owners", "vehicles")  # one <entity>.json file per Day attribute
_encode = json.JSONEncoder(check_circular=False).encode  # records are acyclic: skip json.dumps' cycle check


@dataclass(frozen=True)
class KeyChanges(Generic[K]):
    """Keys of one entity touched on one day, by kind; disjoint so each kind can be asserted alone."""

    inserted: frozenset[K] = frozenset()
    scd1_updated: frozenset[K] = frozenset()
    scd2_updated: frozenset[K] = frozenset()
    options_changed: frozenset[K] = frozenset()  # vehicles only
    deleted: frozenset[K] = frozenset()


@dataclass(frozen=True)
class DayChanges:
    """What changed since the previous day: the ground truth to check ingestion against."""

    vehicles: KeyChanges[str]
    owners: KeyChanges[int]


@dataclass
class Day:
    """One delivery day: full state exactly as written to JSON, plus changes. Records are shared
    with the previous day (a change builds a new record), so treat them as read-only."""

    date: date
    owners: dict[int, Record]
    vehicles: dict[str, Record]
    changes: DayChanges


def _new_owner(rng: random.Random, owner_id: int) -> Record:
    """Build an owner; the email embeds the id so it is unique without bookkeeping."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    city, prefix = rng.choice(CITIES)
    return {"owner_id": owner_id, "name": f"{first} {last}",
            "email": f"{first}.{last}{owner_id}@{rng.choice(DOMAINS)}".lower(),
            "address": {"street": f"{rng.choice(STREETS)} {rng.randint(1, 199)}", "city": city,
                        "postcode": f"{prefix}{rng.randrange(1000):03d}"}}


def _new_vehicle(rng: random.Random, num: int, owner_ids: Sequence[int], day: date,
                 *, history: Sequence[str] | None = None) -> Record:
    """Build a vehicle; the VIN ends in its number, so it is unique by construction. ``history[k]``,
    the ISO date k days before ``day``, backdates initial ownership; without it ownership starts today."""
    make = rng.choice(MAKE_NAMES)
    wmi, models = MAKES[make]
    year = rng.randint(day.year - 15, day.year - 1)
    age_days = (day - date(year, 1, 1)).days
    return {"vehicle_id": f"V{num:07d}", "vin": wmi + "".join(rng.choices(VIN_CHARS, k=7)) + f"{num:07d}",
            "make": make, "model": rng.choice(models), "year": year, "color": rng.choice(COLORS),
            "mileage_km": rng.randrange(age_days * 40 + 1),
            "owner": {"owner_id": rng.choice(owner_ids),
                      "since": history[rng.randrange(1, age_days)] if history else day.isoformat()},
            "options": [OPTIONS[i] for i in sorted(rng.sample(range(len(OPTIONS)), rng.randint(0, 4)))]}


def _split(rng: random.Random, keys: list[K], n: int, kinds: int) -> list[list[K]]:
    """Draw ``kinds`` disjoint random groups of up to ``n`` keys: each key changes one way a day."""
    picks = rng.sample(keys, min(n * kinds, len(keys)))
    return [picks[i::kinds] for i in range(kinds)]


def _next_day(rng: random.Random, day: date, owners: dict[int, Record], vehicles: dict[str, Record],
              *, next_owner: int, next_vehicle: int, rate: float) -> Day:
    """Derive a day from the previous one, copy-on-write so the already yielded day stays intact."""
    # Per change kind: `rate` of the keys split over the kinds, at least one so every kind shows up.
    o_n, v_n = ((0 if rate == 0 else max(1, round(n * rate / kinds)))
                for n, kinds in ((len(owners), OWNER_KINDS), (len(vehicles), VEHICLE_KINDS)))
    if next_vehicle + v_n > 10**7:
        raise OverflowError("vehicle ids are limited to 7 digits")
    owners, vehicles, today = dict(owners), dict(vehicles), day.isoformat()
    # Owners. Deletes prefer owners without vehicles; other deleted owners' vehicles are re-owned below.
    owned = {v["owner"]["owner_id"] for v in vehicles.values()}
    free, busy = [o for o in owners if o not in owned], [o for o in owners if o in owned]
    o_del = rng.sample(free, min(o_n, len(free)))
    o_del += rng.sample(busy, max(0, min(o_n - len(o_del), len(busy) - 1)))  # keep an owner for them
    gone = set(o_del)
    o_scd1, o_scd2 = _split(rng, [o for o in owners if o not in gone], o_n, 2)
    for o in o_del:
        del owners[o]
    for o in o_scd1:  # SCD1: new email (redrawn until it really differs)
        rec, email = owners[o], owners[o]["email"]
        while email == rec["email"]:
            email = f"{rec['name'].lower().replace(' ', '.')}.{rng.randrange(10000)}@{rng.choice(DOMAINS)}"
        owners[o] = {**rec, "email": email}
    for o in o_scd2:  # SCD2: moved to another city
        rec = owners[o]
        city, prefix = rng.choice([c for c in CITIES if c[0] != rec["address"]["city"]])
        postcode = f"{prefix}{rng.randrange(1000):03d}"
        owners[o] = {**rec, "address": {**rec["address"], "city": city, "postcode": postcode}}
    o_ins = range(next_owner, next_owner + o_n)
    owners.update((o, _new_owner(rng, o)) for o in o_ins)
    alive = list(owners)
    # Vehicles. Those of deleted owners get a forced SCD2 owner change; the rest draw their change kind.
    forced = [k for k, v in vehicles.items() if v["owner"]["owner_id"] in gone]
    orphans = set(forced)
    v_scd1, v_scd2, v_opt, v_del = _split(rng, [k for k in vehicles if k not in orphans], v_n, 4)
    for k in v_del:
        del vehicles[k]
    for k in v_scd1:  # SCD1: driven some more
        vehicles[k] = {**vehicles[k], "mileage_km": vehicles[k]["mileage_km"] + rng.randint(10, 3000)}
    for k in forced + v_scd2:  # SCD2: new owner since today, or repainted
        rec = vehicles[k]
        if k in orphans or (len(alive) > 1 and rng.random() < 0.5):
            owner_id = rec["owner"]["owner_id"]
            while owner_id == rec["owner"]["owner_id"]:
                owner_id = rng.choice(alive)
            vehicles[k] = {**rec, "owner": {"owner_id": owner_id, "since": today}}
        else:
            vehicles[k] = {**rec, "color": rng.choice([c for c in COLORS if c != rec["color"]])}
    for k in v_opt:  # one option removed or added; codes stay unique and sorted
        rec, opts = vehicles[k], vehicles[k]["options"]
        if len(opts) == 4 or (opts and rng.random() < 0.5):
            drop = rng.choice(opts)
            opts = [o for o in opts if o is not drop]
        else:
            opts = sorted([*opts, rng.choice([o for o in OPTIONS if o not in opts])], key=lambda o: o["code"])
        vehicles[k] = {**rec, "options": opts}
    v_ins = [_new_vehicle(rng, n, alive, day) for n in range(next_vehicle, next_vehicle + v_n)]
    vehicles.update((v["vehicle_id"], v) for v in v_ins)
    return Day(day, owners, vehicles, DayChanges(
        vehicles=KeyChanges(inserted=frozenset(v["vehicle_id"] for v in v_ins), scd1_updated=frozenset(v_scd1),
                            scd2_updated=frozenset(forced + v_scd2), options_changed=frozenset(v_opt),
                            deleted=frozenset(v_del)),
        owners=KeyChanges(inserted=frozenset(o_ins), scd1_updated=frozenset(o_scd1),
                          scd2_updated=frozenset(o_scd2), deleted=frozenset(o_del))))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause cyclic GC while building a day: it would rescan millions of (acyclic) records, ~2x slower."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def simulate(*, days: int, seed: int = 42, vehicles: int = 50, owners: int = 20,
             start: date = date(2026, 1, 1), change_rate: float = 0.1) -> Iterator[Day]:
    """Yield the source's state day by day, carrying only the previous day along (memory-frugal).
    Each day draws from its own RNG seeded by (seed, day index), and keys are only visited in dict/list
    order (never set order), so output is identical across runs and ``PYTHONHASHSEED``s."""
    if min(days, vehicles, owners) < 1 or vehicles >= 10**7 or not 0 <= change_rate <= 1:
        raise ValueError("need days, vehicles, owners >= 1, vehicles < 10,000,000 and 0 <= change_rate <= 1")
    rng = random.Random(f"TST01:{seed}:0")
    history = [(start - timedelta(days=k)).isoformat() for k in range(16 * 366)]
    with _gc_paused():
        own = {o: _new_owner(rng, o) for o in range(1, owners + 1)}
        ids = list(own)
        veh = {v["vehicle_id"]: v for v in (_new_vehicle(rng, n, ids, start, history=history)
                                           for n in range(1, vehicles + 1))}
    day = Day(start, own, veh, DayChanges(vehicles=KeyChanges(inserted=frozenset(veh)),
                                          owners=KeyChanges(inserted=frozenset(own))))
    next_owner, next_vehicle = owners + 1, vehicles + 1  # keys are never reused
    yield day
    for i in range(1, days):
        with _gc_paused():
            day = _next_day(random.Random(f"TST01:{seed}:{i}"), start + timedelta(days=i), day.owners,
                            day.vehicles, next_owner=next_owner, next_vehicle=next_vehicle, rate=change_rate)
        next_owner += len(day.changes.owners.inserted)
        next_vehicle += len(day.changes.vehicles.inserted)
        yield day


def _json_array(records: Iterable[Record]) -> Iterator[str]:
    """Stream a JSON array, one record per line, so 1M records never become one giant string."""
    yield "["
    sep = "\n"
    for rec in records:
        yield sep + _encode(rec)
        sep = ",\n"
    yield "\n]\n"


def write_day(day: Day, out: Path) -> Path:
    """Write ``<out>/<YYYY-MM-DD>/{owners,vehicles}.json``, each replaced atomically (never half a file).
    Records come out sorted by key for free: new keys are always the highest, so the dicts stay sorted."""
    folder = Path(out) / day.date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for entity in ENTITIES:
        tmp = folder / f".{entity}.json.tmp"
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            f.writelines(_json_array(getattr(day, entity).values()))
        os.replace(tmp, folder / f"{entity}.json")
    return folder


def _deliver(day: Day, out: Path) -> tuple[Path, bool]:
    """Write a day unless its folder already holds identical files; return (folder, written).
    Files are compared streaming against what would be written, so an unchanged day costs no writes."""
    folder = Path(out) / day.date.isoformat()
    for entity in ENTITIES:
        path = folder / f"{entity}.json"
        if not path.is_file():
            return write_day(day, out), True
        with path.open("rb") as f:
            chunks = (c.encode() for c in _json_array(getattr(day, entity).values()))
            if not all(f.read(len(b)) == b for b in chunks) or f.read(1):
                return write_day(day, out), True
    return folder, False


def generate(out: Path, *, days: int, seed: int = 42, vehicles: int = 50, owners: int = 20,
             start: date = date(2026, 1, 1), change_rate: float = 0.1) -> list[Path]:
    """Write all day folders idempotently (identical days are not rewritten); return them in order."""
    return [_deliver(day, Path(out))[0] for day in simulate(
        days=days, seed=seed, vehicles=vehicles, owners=owners, start=start, change_rate=change_rate)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: one output line per delivery day."""
    p = argparse.ArgumentParser(description="Generate TST01 (car registry) daily JSON deliveries.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--days", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--vehicles", type=int, default=50)
    p.add_argument("--owners", type=int, default=20)
    p.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1))
    p.add_argument("--change-rate", type=float, default=0.1)
    a = p.parse_args(argv)
    for day in simulate(days=a.days, seed=a.seed, vehicles=a.vehicles, owners=a.owners,
                        start=a.start, change_rate=a.change_rate):
        folder, written = _deliver(day, a.out)
        print(f"{folder} owners={len(day.owners)} vehicles={len(day.vehicles)} "
              f"{'written' if written else 'unchanged'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
