"""Test-only fault injection: DATAPLATFORM_FAULT_PAUSE=<point>:<seconds> pauses a run at a named point,
so a crash test can kill the process exactly there. Unset (always, outside tests) it does nothing.

Points: `landing` (after dlt committed the batch's rows, before the batch is marked landed),
`bronze` and `silver` (inside dbt's open transaction; see fault_pause in dbt_project/macros/testing.sql).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAULT_ENV = "DATAPLATFORM_FAULT_PAUSE"


def pause_at(point: str, *, marker_dir: Path) -> None:
    name, _, seconds = os.environ.get(FAULT_ENV, "").partition(":")
    if name == point:
        (marker_dir / f"fault-{point}").touch()  # tells the test the run is now at the point
        time.sleep(float(seconds))
