"""`dbt build` in the step's own process (dbt's programmatic dbtRunner), its results handed to Dagster as
dagster-dbt hands a dbt subprocess's.

Why not `DbtCliResource.cli` (a dbt subprocess): on the small batches a home server mostly runs, starting dbt
cost more than building. The subprocess paid a Python start-up, dbt's imports (~2.5 s; this process has most of
them already, for the definitions) and its own ~190 MiB beside this process. Measured in `make bench` (README).

What stays as with the subprocess: the same dbt arguments and model selection (dagster-dbt's own functions
compute them from the step's selected assets), the same Dagster events (dagster-dbt's `DbtCoreCliEventMessage`
turns dbt's structured events into them), dbt's log lines on the step's stdout, and a target folder of its
own per invocation, named as dagster-dbt names it (`<op>-<run id[:7]>-<random>`), holding run_results.json.

dbt runs in a worker thread so that its events reach Dagster while it builds; its result events and console lines
arrive through a queue and are turned into Dagster events and printed here, in the step's thread.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject
from dagster_dbt.asset_utils import extract_runtime_selection_from_args, get_updated_cli_invocation_params_for_context
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

_DONE = object()  # put on the queue when dbt has returned
_RUNNING: set[InProcessDbtInvocation] = set()  # builds whose dbt thread has not returned
_CANCEL_WAIT_SECONDS = 60
_RESULT_EVENTS = ("LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult")  # as dagster-dbt's
_CONSOLE_LEVELS = ("info", "warn", "error")  # what dbt's console shows by default


class DbtBuildError(RuntimeError):
    """dbt could not run at all (bad profile, unreachable warehouse, internal error): no node has a result."""


class InProcessDbtInvocation:
    """One dbt command run by dbtRunner in a worker thread; `stream()` yields its Dagster events as nodes finish,
    then `run_results` and `manifest` hold what the subprocess's artifacts held."""

    def __init__(self, *, args: list[str], manifest: dict[str, Any], translator: DagsterDbtTranslator,
                 context: dg.AssetExecutionContext, project: DbtProject | None, target_path: Path) -> None:
        self.args = args
        self.manifest = manifest
        self.translator = translator
        self.context = context
        self.project = project
        self.target_path = target_path
        self._events: queue.Queue[Any] = queue.Queue()
        self._result: Any = None
        self._thread = threading.Thread(target=self._invoke, name="dbt-build", daemon=True)

    def _invoke(self) -> None:
        from dbt.cli.main import dbtRunner

        _RUNNING.add(self)
        try:
            self._result = dbtRunner(callbacks=[self._on_event]).invoke(self.args)
        finally:
            _RUNNING.discard(self)
            self._events.put(_DONE)

    def _on_event(self, message: Any) -> None:
        if message.info.name in _RESULT_EVENTS or message.info.level in _CONSOLE_LEVELS:
            self._events.put(message)

    def stream(self) -> Iterator[dg.Output | dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckResult
                                 | dg.AssetCheckEvaluation]:
        from dbt_common.events.functions import msg_to_dict

        self._thread.start()
        try:
            while (message := self._events.get()) is not _DONE:
                if message.info.level in _CONSOLE_LEVELS:  # dbt's console line, printed by the step's own thread
                    print(message.info.msg, flush=True)
                if message.info.name not in _RESULT_EVENTS:
                    continue
                event = DbtCoreCliEventMessage(raw_event=msg_to_dict(message), event_history_metadata={})
                yield from event.to_default_asset_events(manifest=self.manifest, dagster_dbt_translator=self.translator,
                                                         context=self.context, target_path=self.target_path,
                                                         project=self.project)
        except BaseException:  # the step was interrupted while waiting for dbt, or stopped reading: so does dbt
            self._cancel()
            raise
        self._thread.join()
        result = self._result
        if result is None or (not result.success and result.exception is not None):
            reason = getattr(result, "exception", None) or "dbt stopped without a result"
            raise DbtBuildError(f"dbt could not run ({reason}); no model was built: check the warehouse connection"
                                f" (`dataplatform status`) and dbt's log in this step, then run again")

    def _cancel(self) -> None:
        """Cancel dbt's running queries, as dbt does on Ctrl-C (each model's transaction rolls back), until its
        thread has returned: dbt goes on to the next nodes after a cancelled one, and their statements are
        cancelled in turn, so nothing is written after the step has ended and released the transform lock."""
        from dbt.adapters.factory import FACTORY

        deadline = time.monotonic() + _CANCEL_WAIT_SECONDS
        while self._thread.is_alive() and time.monotonic() < deadline:
            for adapter in list(FACTORY.adapters.values()):
                with contextlib.suppress(Exception), adapter.connection_named("dataplatform_cancel"):
                    adapter.cancel_open_connections()  # as dbt's own Ctrl-C does, from a connection of this thread
            self._thread.join(timeout=0.5)

    @staticmethod
    def cancel_running() -> None:
        """At the process's exit: cancel a build whose step ended without this module seeing it. Dagster holds back
        an interrupt (run terminated, Ctrl-C) that comes while it handles a step's event, and raises it in its own
        code, so the step ends without stream() being told; the process then ends with dbt's statement still
        running in the warehouse (a rollback only when it finishes) and holding its locks."""
        for invocation in list(_RUNNING):
            invocation._cancel()

    @functools.cached_property
    def run_results(self) -> dict[str, Any]:
        """run_results.json as dbt wrote it into this invocation's target folder (read once)."""
        return json.loads((self.target_path / "run_results.json").read_text())


atexit.register(InProcessDbtInvocation.cancel_running)  # before the interpreter stops dbt's daemon thread


def dbt_in_process(args: Sequence[str], *, context: dg.AssetExecutionContext,
                   project: DbtProject) -> InProcessDbtInvocation:
    """The dbt command `args` for the step's selected dbt assets, ready to `stream()`."""
    cleaned, selects, excludes = extract_runtime_selection_from_args(args)
    # The step's manifest, translator and selection, as dagster-dbt's DbtCliResource.cli computes them (for a large
    # selection it writes a selector into a temporary copy of the project: its dbt_project says where).
    params = get_updated_cli_invocation_params_for_context(
        context=context, manifest={}, dagster_dbt_translator=DagsterDbtTranslator(),
        runtime_selects=selects, runtime_excludes=excludes)
    run_project = params.dbt_project or project
    target_path = Path(project.project_dir) / "target" / (
        f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{str(uuid.uuid4())[:7]}")
    full_args = ["--no-use-colors", *cleaned, *params.selection_args,  # the step's log is a file, not a terminal
                 "--project-dir", str(run_project.project_dir), "--profiles-dir", str(project.profiles_dir),
                 "--target-path", str(target_path), "--log-path", str(target_path),
                 # dbt's console lines are printed by the step's thread (stream()), where the run's log context is
                 # (JSON logs carry its run and batch ids); dbt.log in the target folder keeps the debug lines.
                 "--log-level", "none", "--log-level-file", "debug"]
    if params.indirect_selection:
        full_args += ["--indirect-selection", params.indirect_selection]
    return InProcessDbtInvocation(args=full_args, manifest=params.manifest, translator=params.dagster_dbt_translator,
                                  context=context, project=run_project, target_path=target_path)
