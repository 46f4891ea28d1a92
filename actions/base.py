"""What an action is handed, and what it must offer: the `run(context)` interface every action type (and a
`python` action's class) implements.

An action runs after an event it follows (audit/events.py), once per event, in its own Dagster run: it never
fails the data run that triggered it. Whatever it raises is recorded in `audit.action_run` and notified.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from audit.events import Event
from metadata.catalog import Catalog
from secret_store.base import SecretStore


@dataclass(frozen=True)
class ActionContext:
    """Everything an action may use.

    - `event`: the event it follows (system, entity, layer, batch id, counts, status, message);
    - `summary`: the event's batch as text fields (`source_ref`, `batch_timestamp`, `batch_status`,
      `batch_summary`: one line per layer and entity with its counts);
    - `action`: the action's declaration from actions.json; `settings`: a python action's `settings`;
    - `warehouse_url`: the platform's PostgreSQL (connect with `warehouse.session.connect`);
    - `state_dir`: the action's own owner-only folder under the state folder, for files it keeps;
    - `secrets`: the secret store (resolve references with `secret_store.base.resolve_secrets`);
    - `run_dbt(args)`: dbt on the platform's project, as the platform runs it (the transform lock held);
    - `log`: a logger whose lines carry the run and batch ids.
    """

    event: Event
    summary: Mapping[str, str]
    action: Any
    catalog: Catalog
    warehouse_url: str
    state_dir: Path
    secrets: SecretStore
    run_dbt: Callable[[list[str]], None]
    dagster_run_id: str
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("dataplatform.actions"))
    settings: Mapping[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """The names a template may use: the event's fields, the batch summary, and `action`."""
        return {**self.event.fields(), **self.summary, "action": self.action.name}


class ActionRunner(Protocol):
    """One action type. `run` raises to say the action failed; its message is recorded and notified."""

    def run(self, context: ActionContext) -> str | None:
        """Do the work; return a short note for the audit row (or None)."""
        ...
