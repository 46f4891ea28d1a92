"""What a connector is: how the landing writer asks a source of one system type for its next batch.

Delta loads: `audit.cursor` is the one record of where each endpoint of a system stands. Landing reads it
and hands it to `next_load` (`cursors`); the load carries the values it reads from (`PendingLoad.cursors`),
the connector says where reading got to (`CursorReached.advance`), and landing writes those values to
`audit.cursor` and `audit.batch_cursor` in the transaction that finishes the landing layer, so a failed or
killed run leaves the cursor where it was and the next run reads the same range again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from metadata.models import Connection


@dataclass(frozen=True)
class PendingLoad:
    """What the next batch of a system loads and its batch timestamp (UTC).

    `source_ref` is recorded in `audit.system_run.source_ref` (json_files: the delivery folder name;
    sources read by cursor: a readable label such as the run's UTC timestamp). `cursors`: endpoint -> the
    stored cursor value this load reads from (from `audit.cursor` for a new load; for a forced re-land, the
    value the re-landed batch started from, `audit.batch_cursor.start_value`); an endpoint that is absent
    reads from the beginning, and a `full` endpoint ignores it. `system_id`: the system (a connector that keeps
    state on the source under names of its own, such as a replication slot, derives them from it).
    """

    source_ref: str
    timestamp: dt.datetime
    cursors: Mapping[str, str] = field(default_factory=dict)
    system_id: str = ""


def load_at_run_time(*, landed: set[str], cursors: Mapping[str, str], system_id: str = "") -> PendingLoad:
    """The load of a source that only tells what is new by being read (an API, a database): named by the run's
    UTC timestamp, which is also its batch timestamp (a microsecond later while that name has landed already)."""
    now = dt.datetime.now(dt.UTC)
    while (ref := now.isoformat().replace("+00:00", "Z")) in landed:
        now += dt.timedelta(microseconds=1)
    return PendingLoad(ref, now, cursors, system_id)


def load_named(source_ref: str, cursors: Mapping[str, str], *, system_id: str = "") -> PendingLoad:
    """The load `load_at_run_time` named `source_ref` again (a forced re-land), read from `cursors`."""
    return PendingLoad(source_ref, dt.datetime.fromisoformat(source_ref.replace("Z", "+00:00")), cursors, system_id)


class CursorReached:
    """Handed by the landing writer to `raw_records`: the connector records, per endpoint, where reading
    got to. Only the value given last for an endpoint is kept; the connector decides the order of its
    values (e.g. it advances only to a larger one). Landing stores `values` once the batch has landed."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def advance(self, endpoint: str, value: str) -> None:
        self.values[endpoint] = value


@dataclass(frozen=True)
class EndpointCheck:
    """What `dataplatform check` found for one endpoint: whether the source answers and accepts the
    credentials (`ok`), in words that hold no secret."""

    endpoint: str
    ok: bool
    message: str


class Connector(Protocol):
    """One per system type. `connection` is the system's typed connection, secrets already resolved;
    `base_dir` is the platform's state folder (relative paths in metadata are taken from it)."""

    def next_load(self, system_id: str, connection: Connection, *, landed: set[str],
                  cursors: Mapping[str, str], base_dir: Path) -> PendingLoad | None:
        """The next load (`landed`: the source refs that have landed; `cursors`: `audit.cursor` of the system).
        None when the connector knows nothing is new (json_files, files); a source that can only know by
        reading (rest_api) returns a load every run."""
        ...

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *,
                  cursors: Mapping[str, str], base_dir: Path) -> PendingLoad:
        """The load of an earlier batch again (forced re-land); `cursors`: where that batch started.
        Raises if the source can no longer give it."""
        ...

    def raw_records(self, connection: Connection, endpoint: str, load: PendingLoad, *, base_dir: Path,
                    reached: CursorReached) -> Iterator[str]:
        """The endpoint's records in `load`, each as its JSON text, as the source gave it; where reading got
        to goes to `reached`."""
        ...


class ReleasingConnector(Connector, Protocol):
    """A connector that keeps what it read on the source until told it landed (a replication slot retains WAL):
    optional, landing calls it where a connector has it, after the transaction that stored the cursors."""

    def release(self, system_id: str, connection: Connection, cursors: Mapping[str, str], *,
                base_dir: Path) -> list[str]:
        """`cursors` (endpoint -> value) are stored: the source may drop what comes before them. Returns notes for
        the log (a failure here loses nothing: the next read releases up to the stored cursor first)."""
        ...


class CheckingConnector(Connector, Protocol):
    """A connector that can also tell, without landing anything, whether its source answers (optional:
    `dataplatform check` uses it where a connector has it)."""

    def check(self, connection: Connection, *, base_dir: Path) -> list[EndpointCheck]:
        """Per endpoint: whether the source answers and the credentials work; never a secret in a message. (A
        check that also takes `system_id` and `cursors`, keywords, is given the system and `audit.cursor`.)"""
        ...
