"""The quality gate in a process of its own: Great Expectations is imported there, never in the run's process.

Why: importing GX (pandas, SciPy, Altair, SQLAlchemy, ...) adds ~160 MiB to a process for good, and the
run's process then still holds it while the dbt subprocess runs beside it, which makes the run's peak
memory. A child that checks the batches and exits gives that memory back before dbt starts; its
start-up costs about what the import cost in-process (the child imports no Dagster, dbt or dlt).

The parent hands the child everything it needs (the warehouse URL, the validated catalog, the system's
entities, its batches of this run, the Dagster run id) pickled on stdin, never on the command line (the
URL holds a password); the child runs `quality.gate.gate_batch` for each batch, as the step did itself,
writing the same audit rows, and leaves its answer, pickled, in a file the parent names. What the child
prints is kept in a file and quoted (redacted) only when it fails.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.batches import SystemRun
from metadata.catalog import Catalog
from quality.report import EntityVerdict
from secret_store.redact import redact

STDERR_TAIL = 2000  # characters of the child's output quoted when it fails


class GateStartError(RuntimeError):
    """Great Expectations could not start (nothing was checked); the text says why."""


@dataclass(frozen=True)
class GateOutcome:
    import_seconds: float
    startup_seconds: float
    verdicts: list[tuple[SystemRun, list[EntityVerdict]]] = field(default_factory=list)  # per batch, in order
    seconds: float = 0.0  # the child's whole life, as the parent saw it


def check_batches(url: str, catalog: Catalog, entity_names: list[str], runs: list[SystemRun], *,
                  dagster_run_id: str) -> GateOutcome:
    """Gate `runs` (batches of one system) in a child process; their audit rows are written by the child.

    Raises GateStartError when GX could not start, RuntimeError when the child failed otherwise (its error,
    or its exit status and the tail of what it printed), both redacted.
    """
    started = time.perf_counter()
    request = pickle.dumps({"url": url, "catalog": catalog, "entities": entity_names, "runs": runs,
                            "dagster_run_id": dagster_run_id})
    with tempfile.TemporaryDirectory(prefix="dataplatform-gate-") as folder:
        result_file, output_file = Path(folder) / "result.pickle", Path(folder) / "output.txt"
        with output_file.open("wb") as output:
            done = subprocess.run([sys.executable, "-m", "quality.process", str(result_file)], input=request,
                                  stdout=output, stderr=subprocess.STDOUT, env=os.environ.copy(), check=False)
        if not result_file.exists():
            tail = redact(output_file.read_text(errors="replace")[-STDERR_TAIL:].strip())
            raise RuntimeError(f"the quality gate's process ended with exit status {done.returncode} and no answer"
                               f"{': ' + tail if tail else ''}")
        answer: dict[str, Any] = pickle.loads(result_file.read_bytes())
    if "cannot_start" in answer:
        raise GateStartError(redact(answer["cannot_start"]))
    if "error" in answer:
        raise RuntimeError(redact(answer["error"]))
    return GateOutcome(answer["import_seconds"], answer["startup_seconds"], answer["verdicts"],
                       time.perf_counter() - started)


def _serve(request: dict[str, Any]) -> dict[str, Any]:
    """The child's work: one GX validator for every batch, as the step ran it in-process before."""
    from quality.gate import gate_batch
    from quality.gx import GxValidator
    from warehouse.session import connect

    catalog: Catalog = request["catalog"]
    entities = [catalog.entities[name] for name in request["entities"]]
    try:
        validator = GxValidator(request["url"])
    except Exception as err:  # noqa: BLE001 - any reason GX cannot start is reported as such
        return {"cannot_start": " ".join(str(err).split())[:2000]}
    verdicts = []
    with validator, connect(request["url"], autocommit=True) as conn:
        for run in request["runs"]:
            verdicts.append((run, gate_batch(conn, catalog, run, entities, validator,
                                             dagster_run_id=request["dagster_run_id"])))
    return {"import_seconds": validator.import_seconds, "startup_seconds": validator.startup_seconds,
            "verdicts": verdicts}


def main(argv: list[str]) -> int:
    result_file = Path(argv[0])
    request = pickle.loads(sys.stdin.buffer.read())
    try:
        answer = _serve(request)
    except Exception as err:  # noqa: BLE001 - the parent fails the step with this text
        answer = {"error": f"the quality gate failed: {type(err).__name__}: {' '.join(str(err).split())[:2000]}"}
    result_file.write_bytes(pickle.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
