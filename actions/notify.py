"""Tell the operator about a failure, on the channels actions.json declares (`notifications`): what failed,
the batch (or, for a run that failed before it had one, the run), the message, and the command that re-runs or
fixes it. Each (event or run failure, subject, channel) is sent once (audit.notification), however often the run
or the sensor that sends it is retried."""

from __future__ import annotations

import psycopg

from actions.slack import post_webhook
from actions.smtp import send_mail
from audit.actions import NotificationOf, claim_notification, finish_notification
from audit.entities import fix_hint
from audit.events import ENTITY_LAYER, Event
from audit.run_failures import RunFailure
from metadata.catalog import Catalog
from secret_store.base import SecretStore
from secret_store.redact import redact

FAILURE = "failure"


def fix_command(event: Event) -> str:
    """What the operator runs once the cause is fixed: the same advice `dataplatform run` prints."""
    if event.kind == ENTITY_LAYER and event.layer in ("quality", "bronze", "silver"):
        return fix_hint(event.entity or "", event.batch_id)
    if event.layer == "landing":
        return (f"fix the source or delivery, then `dataplatform run --system {event.system_id}` (the delivery"
                " lands again under the same batch id)")
    if event.layer == "gold":
        return (f"fix the mart, then `dataplatform dbt build --select gold` (or `dataplatform run --system"
                f" {event.system_id} --force --batch {event.batch_id}`)")
    return (f"see `dataplatform status`, then `dataplatform run --system {event.system_id} --force --batch"
            f" {event.batch_id}`")


def failure_message(event: Event) -> tuple[str, str]:
    """(title, text) of the notification of a failed event."""
    what = f"entity {event.system_id}.{event.entity}" if event.entity else f"system {event.system_id}"
    title = f"dataplatform: {what} FAILED in {event.layer} (batch {event.batch_id})"
    message = event.message or "no message recorded; see `dataplatform status`"
    lines = [title, f"batch: {event.batch_id} (Dagster run {event.dagster_run_id}, event {event.event_id})",
             f"message: {message}"]
    if "dataplatform " not in message:  # bronze and silver failures already say what to do
        lines.append(f"to fix: {fix_command(event)}")
    return title, redact("\n".join(lines))


def action_failure_message(event: Event, action: str, error: str) -> tuple[str, str]:
    title = f"dataplatform: action {action} FAILED after {event.describe()}"
    text = "\n".join([title, f"batch: {event.batch_id} (event {event.event_id})", f"message: {error}",
                      f"to fix: correct the cause, then re-execute the action's run in the Dagster UI (job"
                      f" run_actions, tag dataplatform/action={action}); the data run itself was not affected"])
    return title, redact(text)


def rerun_command(failure: RunFailure) -> str:
    """What re-runs a failed run: the system's run, every system's, or (a selection made in the UI) its re-execution."""
    if failure.job_name.startswith("run_") and len(failure.systems) == 1:
        return f"`dataplatform run --system {failure.systems[0]}`"
    if failure.job_name == "run_all":
        return "`dataplatform run`"
    return f"re-execute Dagster run {failure.dagster_run_id} in the Dagster UI"


def run_failure_message(failure: RunFailure) -> tuple[str, str]:
    """(title, text) of the notification of a run that failed where no event reports it (before any batch was
    processed, or an error of a step itself): what, where, Dagster's run id, the message, the command."""
    what = f"system {', '.join(failure.systems)}" if failure.systems else "the platform"
    where = f"step {', '.join(failure.steps)}" if failure.steps else "the run itself"
    title = f"dataplatform: run of {what} FAILED in {where} (job {failure.job_name})"
    lines = [title, f"Dagster run: {failure.dagster_run_id}", f"message: {failure.message}",
             f"to fix: correct the cause the message names, then {rerun_command(failure)}"]
    return title, redact("\n".join(lines))


def notify(conn: psycopg.Connection, catalog: Catalog, store: SecretStore, *, of: NotificationOf, subject: str,
           title: str, text: str) -> dict[str, str | None]:
    """Send on every declared channel not sent yet; channel -> None (sent) or why it was not. A channel that fails
    does not stop the others."""
    outcome: dict[str, str | None] = {}
    for index, channel in enumerate(catalog.notifications):
        name = f"{channel.type}[{index}]"
        if not claim_notification(conn, of=of, subject=subject, channel=name, title=title,
                                  message=text):
            continue
        try:
            if channel.type == "slack":
                post_webhook(channel, store, text=text)
            else:
                assert catalog.smtp is not None  # validated: email channels need smtp settings
                send_mail(catalog.smtp, store, to=list(channel.to), subject=title, body=text)
            error = None
        except Exception as err:  # noqa: BLE001 - a channel that fails is recorded, the others still go
            error = redact(f"{type(err).__name__}: {err}")
        finish_notification(conn, of=of, subject=subject, channel=name, error=error)
        outcome[name] = error
    return outcome
