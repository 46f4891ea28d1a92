"""`/metrics` for Prometheus: a view of the audit tables, read at scrape time (the audit tables stay the truth;
nothing is counted in memory, so every process and a restart agree).

Mount it where you like: `metrics_text(url)` gives the exposition text, `metrics_wsgi_app(url)` a WSGI app (for
FastAPI/Starlette: `app.mount("/metrics", WSGIMiddleware(metrics_wsgi_app(url)))`), and `dataplatform metrics
--port 9108` serves it on its own port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from warehouse.session import connect

# Per system, entity and layer: what the entity rows recorded (all batches, all runs).
_ROWS = """
select system_id, entity, layer, sum(records_in), sum(inserted), sum(updated), sum(deleted),
       count(*) filter (where status = 'failed')
from audit.entity_layer_run group by system_id, entity, layer order by 1, 2, 3
"""
_RUNS = """
select system_id, status, count(*), coalesce(sum(extract(epoch from ended_at - started_at)), 0)
from audit.system_run where ended_at is not null group by system_id, status order by 1, 2
"""
_LAYERS = """
select r.system_id, l.layer, l.status, count(*), coalesce(sum(extract(epoch from l.ended_at - l.started_at)), 0)
from audit.system_layer_run l join audit.system_run r using (system_run_id)
where l.ended_at is not null group by r.system_id, l.layer, l.status order by 1, 2, 3
"""
_LAST_SUCCESS = """
select system_id, extract(epoch from max(ended_at)) from audit.system_run where status = 'succeeded'
group by system_id order by 1
"""
_ENTITY_LAST_SUCCESS = """
select system_id, entity, extract(epoch from max(ended_at)) from audit.entity_layer_run
where status = 'succeeded' and layer = 'silver' group by system_id, entity order by 1, 2
"""
_ACTIONS = "select action, status, count(*) from audit.action_run group by action, status order by 1, 2"
_NOTIFICATIONS = "select channel, status, count(*) from audit.notification group by channel, status order by 1, 2"
# Runs that failed where no batch or entity says so (audit.run_failure), per system the run was for ('' unknown).
_RUN_FAILURES = """
select coalesce(s.system_id, ''), f.job_name, count(*)
from audit.run_failure f left join lateral unnest(f.systems) as s(system_id) on true
group by 1, 2 order by 1, 2
"""


class AuditCollector(Collector):
    """Reads the audit tables on every scrape; `url` is called then (a URL or a function returning one)."""

    def __init__(self, url: str | Callable[[], str]) -> None:
        self._url = url

    def collect(self) -> Iterator[Any]:
        url = self._url() if callable(self._url) else self._url
        with connect(url) as conn:
            rows = conn.execute(_ROWS).fetchall()
            runs = conn.execute(_RUNS).fetchall()
            layers = conn.execute(_LAYERS).fetchall()
            last = conn.execute(_LAST_SUCCESS).fetchall()
            entity_last = conn.execute(_ENTITY_LAST_SUCCESS).fetchall()
            actions = conn.execute(_ACTIONS).fetchall()
            notifications = conn.execute(_NOTIFICATIONS).fetchall()
            run_failures = conn.execute(_RUN_FAILURES).fetchall()
        labels = ["system", "entity", "layer"]
        families = {
            "records_in": CounterMetricFamily("dataplatform_records_in", "Records the layer read for the entity",
                                              labels=labels),
            "inserted": CounterMetricFamily("dataplatform_rows_inserted", "Rows inserted (layer landing: rows landed;"
                                            " silver: versions opened)", labels=labels),
            "updated": CounterMetricFamily("dataplatform_rows_updated", "Rows updated (silver: versions closed by a"
                                           " change)", labels=labels),
            "deleted": CounterMetricFamily("dataplatform_rows_deleted", "Keys closed as deleted", labels=labels),
            "failed": CounterMetricFamily("dataplatform_entity_failures", "Entity steps that failed", labels=labels),
        }
        for system, entity, layer, records_in, inserted, updated, deleted, failed in rows:
            for name, value in (("records_in", records_in), ("inserted", inserted), ("updated", updated),
                                ("deleted", deleted), ("failed", failed)):
                families[name].add_metric([system, entity, layer], float(value or 0))
        yield from families.values()

        run_count = CounterMetricFamily("dataplatform_runs", "Finished system runs (batches) by status",
                                        labels=["system", "status"])
        run_seconds = CounterMetricFamily("dataplatform_run_duration_seconds", "Total seconds of finished system"
                                          " runs by status", labels=["system", "status"])
        for system, status, count, seconds in runs:
            run_count.add_metric([system, status], float(count))
            run_seconds.add_metric([system, status], float(seconds))
        yield run_count
        yield run_seconds

        layer_count = CounterMetricFamily("dataplatform_layer_runs", "Finished layer runs by status",
                                          labels=["system", "layer", "status"])
        layer_seconds = CounterMetricFamily("dataplatform_layer_duration_seconds", "Total seconds of finished"
                                            " layer runs by status", labels=["system", "layer", "status"])
        for system, layer, status, count, seconds in layers:
            layer_count.add_metric([system, layer, status], float(count))
            layer_seconds.add_metric([system, layer, status], float(seconds))
        yield layer_count
        yield layer_seconds

        last_success = GaugeMetricFamily("dataplatform_last_successful_batch_timestamp_seconds", "When the system's"
                                         " last successful batch ended (Unix time)", labels=["system"])
        for system, seconds in last:
            last_success.add_metric([system], float(seconds))
        yield last_success
        entity_success = GaugeMetricFamily("dataplatform_entity_last_applied_timestamp_seconds", "When silver last"
                                           " applied a batch of the entity (Unix time)", labels=["system", "entity"])
        for system, entity, seconds in entity_last:
            entity_success.add_metric([system, entity], float(seconds))
        yield entity_success

        action_runs = CounterMetricFamily("dataplatform_action_runs", "Action runs by status",
                                          labels=["action", "status"])
        for action, status, count in actions:
            action_runs.add_metric([action, status], float(count))
        yield action_runs
        sent = CounterMetricFamily("dataplatform_notifications", "Notifications by channel and status",
                                   labels=["channel", "status"])
        for channel, status, count in notifications:
            sent.add_metric([channel, status], float(count))
        yield sent
        failed_runs = CounterMetricFamily("dataplatform_run_failures", "Runs that failed before or outside any batch"
                                          " (audit.run_failure: a missing folder, a busy lock, a step's own error)",
                                          labels=["system", "job"])
        for system, job, count in run_failures:
            failed_runs.add_metric([system, job], float(count))
        yield failed_runs


def metrics_registry(url: str | Callable[[], str]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AuditCollector(url))
    return registry


def metrics_text(url: str | Callable[[], str]) -> bytes:
    """The Prometheus exposition text of the audit tables now."""
    return generate_latest(metrics_registry(url))


def metrics_wsgi_app(url: str | Callable[[], str]) -> Callable[..., Any]:
    """A WSGI app answering Prometheus scrapes (any path)."""
    return make_wsgi_app(metrics_registry(url))
