"""The events sensor and the job it starts are part of the definitions; the sensor is on by default when
actions.json declares something to run (the demo declares two actions)."""

from __future__ import annotations

import dagster as dg


def test_the_events_sensor_starts_the_actions_job() -> None:
    from orchestration.definitions import defs

    definitions = defs()
    sensor = definitions.resolve_sensor_def("platform_events")
    assert sensor.job_name == "run_actions"
    assert sensor.minimum_interval_seconds == 30
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    job = definitions.resolve_job_def("run_actions")
    assert [node.name for node in job.nodes] == ["run_action"]
    assert job.tags["dataplatform/job"] == "run_actions"
