"""The platform's log lines: plain text (the default) or, with DATAPLATFORM_LOG_FORMAT=json, one JSON object per
line carrying the run id and batch id of the run it belongs to (for correlation in a log store), every message
masked by the one redaction rule (secret_store.redact).

The ids travel in context variables set where they become known (`correlation`): the Dagster run's id by the
job's steps and the CLI, the batch id by landing once it has opened the batch; every line written meanwhile,
by any logger of the process (the platform's, Dagster's, dlt's), carries them.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from secret_store.redact import redact

LOG_FORMAT_ENV = "DATAPLATFORM_LOG_FORMAT"
_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dataplatform_run_id", default=None)
_batch_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dataplatform_batch_id", default=None)


def json_logs() -> bool:
    """Whether the operator asked for JSON lines (DATAPLATFORM_LOG_FORMAT=json; default text)."""
    value = os.environ.get(LOG_FORMAT_ENV, "text").strip().lower()
    if value not in ("json", "text", ""):
        raise ValueError(f"{LOG_FORMAT_ENV}={value!r}: use 'json' or 'text'")
    return value == "json"


@contextlib.contextmanager
def correlation(*, run_id: str | None = None, batch_id: int | str | None = None) -> Iterator[None]:
    """Every log line written inside the block carries these ids (those not given keep their outer value)."""
    tokens = []
    if run_id is not None:
        tokens.append((_run_id, _run_id.set(str(run_id))))
    if batch_id is not None:
        tokens.append((_batch_id, _batch_id.set(str(batch_id))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            try:
                var.reset(token)
            except ValueError:  # the block was left in another context (a generator resumed elsewhere)
                var.set(None)


def set_batch(batch_id: int | str | None) -> None:
    """From here on (to the end of the current context), lines carry this batch id."""
    _batch_id.set(None if batch_id is None else str(batch_id))


def set_run(run_id: str | None) -> None:
    """From here on, lines carry this run id (the CLI: once a job's run is known; None: no run)."""
    _run_id.set(run_id)


def current_ids() -> dict[str, str | None]:
    return {"run_id": _run_id.get(), "batch_id": _batch_id.get()}


def json_line(*, level: str, logger: str, message: str, created: float | None = None,
              extra: dict[str, Any] | None = None) -> str:
    """One log line as JSON: time (UTC, ISO), level, logger, masked message, run id, batch id."""
    when = dt.datetime.fromtimestamp(created, dt.UTC) if created is not None else dt.datetime.now(dt.UTC)
    record = {"time": when.isoformat(timespec="milliseconds"), "level": level, "logger": logger,
              "message": redact(message), **current_ids(), **(extra or {})}
    if extra and extra.get("dagster_run_id"):  # a Dagster record names its own run: that is the truth
        record["run_id"] = extra["dagster_run_id"]
    return json.dumps(record, default=str)


class JsonFormatter(logging.Formatter):
    """A logging formatter writing `json_line`s; Dagster's records carry their run id in `dagster_meta`."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        extra: dict[str, Any] = {}
        if meta.get("run_id"):
            extra["dagster_run_id"] = meta["run_id"]
        if meta.get("step_key"):
            extra["step"] = meta["step_key"]
        message = meta.get("orig_message") or record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return json_line(level=record.levelname, logger=record.name, message=message, created=record.created,
                         extra=extra)


class RedactingFormatter(logging.Formatter):
    """Text lines, masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler in the chosen format."""
    result = logging.StreamHandler(stream or sys.stderr)
    result.setFormatter(JsonFormatter() if json_logs() else
                        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return result


def configure_logging(*, level: int = logging.INFO) -> None:
    """The platform's loggers (`dataplatform.*`) write through one handler in the chosen format; with JSON
    logs, dlt's logger too."""
    logger = logging.getLogger("dataplatform")
    for old in [h for h in logger.handlers if getattr(h, "_dataplatform", False)]:
        logger.removeHandler(old)
    new = handler()
    new._dataplatform = True  # type: ignore[attr-defined]
    logger.addHandler(new)
    logger.setLevel(level)
    logger.propagate = False
    route_dlt_logs()


class _JsonOnlyHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler that keeps the JSON formatter: dlt sets its own formatter on the first handler of its
    logger each time it (re)initialises its runtime, which would turn its lines back into text."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.formatter = JsonFormatter()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 - logging's name
        pass


def route_dlt_logs() -> None:
    """With JSON logs, dlt's lines (logger `dlt`) are JSON lines with the run and batch ids like every other;
    dlt reuses the first handler it finds on its logger, so ours goes first and keeps its format."""
    if not json_logs():
        return
    dlt_logger = logging.getLogger("dlt")
    if any(isinstance(h, _JsonOnlyHandler) for h in dlt_logger.handlers):
        return
    for old in list(dlt_logger.handlers):
        dlt_logger.removeHandler(old)
    dlt_logger.addHandler(_JsonOnlyHandler())


class _JsonLinesWriter(io.TextIOBase):
    """A text stream that turns each line written to it into a `json_line` on `target`."""

    def __init__(self, target: TextIO, logger: str) -> None:
        self._target, self._logger, self._pending = target, logger, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                self._target.write(json_line(level="INFO", logger=self._logger, message=line) + "\n")
        self._target.flush()
        return len(text)

    def flush(self) -> None:
        self._target.flush()


@contextlib.contextmanager
def json_stdout(logger: str) -> Iterator[None]:
    """With JSON logs, what a tool prints to stdout inside the block (dagster-dbt re-prints dbt's log there)
    becomes JSON lines of `logger`, with the run and batch ids; otherwise nothing changes."""
    if not json_logs():
        yield
        return
    with contextlib.redirect_stdout(_JsonLinesWriter(sys.stdout, logger)):
        yield
