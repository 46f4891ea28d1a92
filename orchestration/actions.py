"""Events in Dagster: the `platform_events` sensor reads `audit.event` from its cursor on, shows each entity's
event as an asset observation, and requests one run of the `run_actions` job per (event, action) and per
failure to notify, with run_key `event-<id>-<action>` (or `event-<id>-notify`): the daemon starts each once.
The job's op runs it through actions/runner.py, which records it in audit.action_run (a second guard, for a
re-executed run). An action that fails is recorded and notified; its own run then fails, never the data run.
"""

import contextlib
import os
from collections.abc import Iterator

import dagster as dg
from dagster_dbt import DbtCliResource

from actions.runner import new_work, notify_failure, run_action
from audit.events import ENTITY_LAYER, Event, events_after
from audit.locks import transform_lock
from metadata.catalog import Catalog
from metadata.naming import landing_table
from observability.logs import correlation, json_stdout
from orchestration.instance import JOB_TAG
from orchestration.masking import MaskedLog, masked_failures
from orchestration.resources import SecretStoreResource, WarehouseResource
from warehouse.embedded import state_dir
from warehouse.session import connect

ACTIONS_JOB = "run_actions"
EVENTS_SENSOR = "platform_events"
NOTIFY = "notify"
TAG = "dataplatform/"


class ActionRunConfig(dg.Config):
    """Which work a run of `run_actions` does: an action for an event, or (action `notify`) its notification."""

    event_id: int
    action: str = NOTIFY


def run_key(event_id: int, action: str) -> str:
    return f"event-{event_id}-{action}"


def event_tags(event: Event, action: str) -> dict[str, str]:
    """The event on the run, so the UI shows what triggered it (and can filter by it)."""
    tags = {f"{TAG}event_id": str(event.event_id), f"{TAG}action": action, f"{TAG}system": event.system_id,
            f"{TAG}layer": event.layer, f"{TAG}batch_id": str(event.batch_id), f"{TAG}event_status": event.status,
            JOB_TAG: ACTIONS_JOB}
    if event.entity:
        tags[f"{TAG}entity"] = event.entity
    return tags


def _observed_asset(catalog: Catalog, event: Event) -> dg.AssetKey | None:
    """The asset an entity's event is about: its landing table, or its bronze or silver table."""
    if event.kind != ENTITY_LAYER or event.entity is None:
        return None
    if event.layer == "landing":
        return dg.AssetKey(["landing", landing_table(event.system_id, event.entity)])
    entity = catalog.entities.get(event.entity)
    if entity is None or event.layer not in ("bronze", "silver"):
        return None
    return dg.AssetKey([event.layer, catalog.table(entity)])


def _observation(catalog: Catalog, event: Event) -> dg.AssetObservation | None:
    key = _observed_asset(catalog, event)
    if key is None:
        return None
    return dg.AssetObservation(asset_key=key, description=f"{event.kind}: {event.describe()}", metadata={
        "event_id": event.event_id, "status": event.status, "layer": event.layer, "batch_id": event.batch_id,
        "records_in": event.records_in, "inserted": event.inserted, "updated": event.updated,
        "deleted": event.deleted, "dagster_run_id": event.dagster_run_id})


def events_sensor(catalog: Catalog) -> dg.SensorDefinition:
    has_work = bool(catalog.actions or catalog.notifications)

    @dg.sensor(name=EVENTS_SENSOR, job_name=ACTIONS_JOB, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING if has_work else dg.DefaultSensorStatus.STOPPED,
               description="Reads the platform's events (audit.event): shows each entity's as an asset observation,"
                           " runs the actions of actions.json that follow it and notifies failures, once per event.")
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        after = int(context.cursor or 0)
        requests: list[dg.RunRequest] = []
        observations: list[dg.AssetObservation] = []
        with connect(WarehouseResource().url(), autocommit=True) as conn:
            events = events_after(conn, after)
            for event in events:
                actions, notify = new_work(conn, catalog, event)
                names = [a.name for a in actions] + ([NOTIFY] if notify else [])
                for name in names:
                    requests.append(dg.RunRequest(
                        run_key=run_key(event.event_id, name), tags=event_tags(event, name),
                        run_config={"ops": {"run_action": {"config": {"event_id": event.event_id, "action": name}}}}))
                observation = _observation(catalog, event)
                if observation is not None:
                    observations.append(observation)
        cursor = str(events[-1].event_id) if events else context.cursor
        return dg.SensorResult(run_requests=requests, cursor=cursor, asset_events=observations)

    return _sensor


@contextlib.contextmanager
def _run_id_env(run_id: str) -> Iterator[None]:
    saved = os.environ.get("DATAPLATFORM_RUN_ID")
    os.environ["DATAPLATFORM_RUN_ID"] = run_id
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("DATAPLATFORM_RUN_ID", None)
        else:
            os.environ["DATAPLATFORM_RUN_ID"] = saved


def actions_job(catalog: Catalog) -> dg.JobDefinition:
    @dg.op(name="run_action", description="Run one action of actions.json for one event, or notify its failure.")
    def _run_action(context: dg.OpExecutionContext, config: ActionRunConfig, warehouse: WarehouseResource,
                    secrets: SecretStoreResource, dbt: DbtCliResource) -> None:
        log = MaskedLog(context)
        url = warehouse.url()

        def run_dbt(args: list[str]) -> None:
            with transform_lock(url, on_wait=lambda: log.warning("another dbt build is in progress: waiting")):
                with _run_id_env(context.run.run_id), json_stdout("dbt"):
                    dbt.cli(args, raise_on_error=True).wait()

        with masked_failures(), correlation(run_id=context.run.run_id):
            if config.action == NOTIFY:
                outcome = notify_failure(url, catalog, secrets.store(), event_id=config.event_id)
                for channel, error in outcome.items():
                    (log.error if error else log.info)(f"notification on {channel}: {error or 'sent'}")
                if any(outcome.values()):
                    raise dg.Failure(f"notification of event {config.event_id} not sent on:"
                                     f" {', '.join(c for c, e in outcome.items() if e)} (see audit.notification)")
                return None
            result = run_action(url, catalog, secrets.store(), event_id=config.event_id, action_name=config.action,
                                dagster_run_id=context.run.run_id, run_dbt=run_dbt, state_root=state_dir())
            if not result.ran:
                log.info(f"action {config.action} already ran for event {config.event_id}: nothing done")
            elif not result.succeeded:
                raise dg.Failure(f"action {config.action} failed for event {config.event_id}: {result.message}"
                                 " (recorded in audit.action_run and notified; the data run is not affected)")
            else:
                log.info(f"action {config.action} for event {config.event_id}: {result.message or 'done'}")
        return None

    @dg.job(name=ACTIONS_JOB, tags={JOB_TAG: ACTIONS_JOB},
            description="Runs one action of actions.json for one event (or notifies a failure); started by the"
                        f" {EVENTS_SENSOR} sensor, once per event and action.")
    def _job() -> None:
        _run_action()

    return _job
