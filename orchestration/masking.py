"""What a step hands Dagster is masked: its failures and its log lines (secret_store.redact is the rule).

An exception that leaves a step is stored by Dagster with its text and the text of every exception it
was chained to (`raise ... from err`), in the event log and the UI. So every step body runs inside
`masked_failures`: whatever escapes it (an error of dlt, dbt, a connector or our own) becomes a
`dg.Failure` whose text is masked, raised `from None` so the original's text is not chained into the log.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from secret_store.redact import redact


@contextmanager
def masked_failures() -> Iterator[None]:
    try:
        yield
    except dg.RetryRequested:
        raise  # control flow, carries no message of a source
    except dg.Failure as err:
        raise dg.Failure(description=redact(err.description or ""), metadata=err.metadata,
                         allow_retries=err.allow_retries) from None
    except Exception as err:
        raise dg.Failure(description=redact(f"{type(err).__name__}: {err}")) from None


class MaskedLog:
    """`context.log` with every message masked: the steps log through it, never through `context.log`."""

    def __init__(self, context: Any) -> None:
        self._log = context.log

    def info(self, message: str) -> None:
        self._log.info(redact(message))

    def warning(self, message: str) -> None:
        self._log.warning(redact(message))

    def error(self, message: str) -> None:
        self._log.error(redact(message))
