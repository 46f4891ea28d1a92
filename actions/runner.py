"""Run the work that follows an event: which actions it triggers, one action for one event (guarded by
audit.action_run, so it runs once), and the notification of a failure. Used by the Dagster job that the
events sensor starts (orchestration/actions.py) and by the run-failure sensor (orchestration/run_failures.py);
nothing here imports Dagster."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from actions import runner_for
from actions.base import ActionContext
from actions.notify import FAILURE, action_failure_message, failure_message, notify, run_failure_message
from audit.actions import NotificationOf, claim_action, finish_action
from audit.events import Event, batch_summary, event_by_id, is_root_failure
from audit.run_failures import RunFailure
from metadata.catalog import Catalog
from metadata.models import Action
from secret_store.base import SecretStore
from secret_store.redact import redact
from warehouse.files import private_folder
from warehouse.session import connect

log = logging.getLogger("dataplatform.actions")


def follows(action: Action, event: Event, *, root_failure: bool) -> bool:
    """Whether `action` runs after `event`: its `on` matches the event's status and one of its triggers names the
    event's system, layer and entity (none for a system-layer event). `on: failure` without `after` follows every
    failure the operator is notified of (one per failure)."""
    if (action.on == "success") != (event.status == "succeeded"):
        return False
    triggers = action.triggers()
    if not triggers:
        return root_failure
    return any(t.system == event.system_id and t.layer == event.layer and t.entity == event.entity for t in triggers)


def actions_for(catalog: Catalog, event: Event, *, root_failure: bool) -> list[Action]:
    return [a for a in catalog.actions if follows(a, event, root_failure=root_failure)]


@dataclass(frozen=True)
class ActionOutcome:
    ran: bool  # False: it had run for this event already, nothing done
    succeeded: bool
    message: str | None


def run_action(url: str, catalog: Catalog, store: SecretStore, *, event_id: int, action_name: str,
               dagster_run_id: str, run_dbt: Callable[[list[str]], None], state_root: Path) -> ActionOutcome:
    """Run one action for one event, once: recorded in audit.action_run; a failure is recorded and notified,
    never raised (the caller decides how its own run ends)."""
    action = next((a for a in catalog.actions if a.name == action_name), None)
    if action is None:
        raise LookupError(f"no action {action_name!r} in actions.json (was it removed since the event?)")
    with connect(url, autocommit=True) as conn:
        event = event_by_id(conn, event_id)
        action_run_id = claim_action(conn, event_id=event_id, action=action.name, action_type=action.type,
                                     dagster_run_id=dagster_run_id)
        if action_run_id is None:
            log.info("action %s already ran for event %s: nothing to do", action.name, event_id)
            return ActionOutcome(False, True, None)
        folder = private_folder(state_root / "actions" / action.name)
        context = ActionContext(event=event, summary=batch_summary(conn, event), action=action, catalog=catalog,
                                warehouse_url=url, state_dir=folder, secrets=store, run_dbt=run_dbt,
                                dagster_run_id=dagster_run_id)
        log.info("action %s (%s) after %s", action.name, action.type, event.describe())
        try:
            note = runner_for(action.type).run(context)
        except Exception as err:  # noqa: BLE001 - an action's failure is recorded and notified, not raised
            error = redact(f"{type(err).__name__}: {err}")
            finish_action(conn, action_run_id, "failed", message=error)
            log.error("action %s failed: %s", action.name, error)
            title, text = action_failure_message(event, action.name, error)
            notify(conn, catalog, store, of=NotificationOf(event_id=event.event_id), subject=f"action {action.name}",
                   title=title, text=text)
            return ActionOutcome(True, False, error)
        finish_action(conn, action_run_id, "succeeded", message=note)
        log.info("action %s succeeded%s", action.name, f": {note}" if note else "")
        return ActionOutcome(True, True, note)


def notify_failure(url: str, catalog: Catalog, store: SecretStore, *, event_id: int) -> dict[str, str | None]:
    """Notify the failure an event reports (if it is the one to notify: see audit.events.is_root_failure)."""
    with connect(url, autocommit=True) as conn:
        event = event_by_id(conn, event_id)
        if not is_root_failure(conn, event):
            return {}
        title, text = failure_message(event)
        outcome = notify(conn, catalog, store, of=NotificationOf(event_id=event.event_id), subject=FAILURE,
                         title=title, text=text)
    for channel, error in outcome.items():
        if error:
            log.error("notification of event %s on %s not sent: %s", event_id, channel, error)
        else:
            log.info("notified %s on %s", event.describe(), channel)
    return outcome


def notify_run_failure(conn: psycopg.Connection, catalog: Catalog, store: SecretStore,
                       failure: RunFailure) -> dict[str, str | None]:
    """Notify a run that failed where no event reports it (audit.run_failure), once per channel."""
    title, text = run_failure_message(failure)
    outcome = notify(conn, catalog, store, of=NotificationOf(run_failure_id=failure.run_failure_id),
                     subject=FAILURE, title=title, text=text)
    for channel, error in outcome.items():
        if error:
            log.error("notification of run %s on %s not sent: %s", failure.dagster_run_id, channel, error)
        else:
            log.info("notified the failed run %s on %s", failure.dagster_run_id, channel)
    return outcome


def new_work(conn: psycopg.Connection, catalog: Catalog, event: Event) -> tuple[list[Action], bool]:
    """(actions the event triggers, whether it is a failure to notify): what the sensor requests runs for."""
    root = is_root_failure(conn, event)
    return actions_for(catalog, event, root_failure=root), root and bool(catalog.notifications)
