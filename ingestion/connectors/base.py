"""What a connector is: how the landing writer asks a source of one system type for its next batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from metadata.models import Connection


@dataclass(frozen=True)
class PendingLoad:
    """What the next batch of a system loads (`source_ref`, e.g. a delivery name) and its batch timestamp."""

    source_ref: str
    timestamp: dt.datetime


class Connector(Protocol):
    """One per system type. `connection` is the system's typed connection, secrets already resolved;
    `base_dir` is the platform's state folder (relative paths in metadata are taken from it)."""

    def next_load(self, system_id: str, connection: Connection, *, landed: set[str],
                  base_dir: Path) -> PendingLoad | None:
        """The next load not landed yet (`landed`: the source refs that have), or None when nothing is new."""
        ...

    def find_load(self, system_id: str, connection: Connection, source_ref: str, *, base_dir: Path) -> PendingLoad:
        """The load called `source_ref` again (a forced re-run of a batch); raises if the source no longer has it."""
        ...

    def raw_records(self, connection: Connection, endpoint: str, source_ref: str, *, base_dir: Path) -> Iterator[str]:
        """The records of one endpoint in the load `source_ref`, each as its JSON text, as the source gave it."""
        ...
