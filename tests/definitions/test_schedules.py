"""A system's declared schedule is a Dagster schedule of that system's job, evaluated here with Dagster's test APIs:
one run request per scheduled time, keyed by system and time, tagged with what started it."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import dagster as dg

from metadata.models import Schedule
from orchestration.actions import EVENTS_SENSOR
from orchestration.run_failures import RUN_FAILURES_SENSOR
from orchestration.triggers import RUN_REQUESTS_SENSOR, SCHEDULED_FOR_TAG, TRIGGER_TAG, triggers

AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")


def test_the_declared_schedule_runs_the_systems_job_and_is_stopped_by_default() -> None:
    from orchestration.definitions import defs

    schedule = defs().resolve_schedule_def("run_tst01_schedule")
    assert (schedule.job_name, schedule.cron_schedule, schedule.execution_timezone) == \
        ("run_tst01", "0 6 * * *", "Europe/Amsterdam")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert [s.name for s in defs().sensors] == [RUN_REQUESTS_SENSOR, EVENTS_SENSOR, RUN_FAILURES_SENSOR]
    failures = next(s for s in defs().sensors if s.name == RUN_FAILURES_SENSOR)
    assert failures.default_status == dg.DefaultSensorStatus.RUNNING  # a failure needs no click to be recorded


def test_a_tick_requests_one_run_keyed_by_system_and_scheduled_time() -> None:
    from orchestration.definitions import defs

    schedule = defs().resolve_schedule_def("run_tst01_schedule")
    tick = dt.datetime(2026, 3, 29, 6, 0, tzinfo=AMSTERDAM)  # the day Amsterdam moves to summer time
    with dg.instance_for_test() as instance:
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    [request] = data.run_requests
    assert request.run_key == "TST01:2026-03-29T06:00:00+02:00"
    assert request.tags == {TRIGGER_TAG: "schedule", SCHEDULED_FOR_TAG: "2026-03-29T06:00:00+02:00",
                            "dagster/schedule_name": "run_tst01_schedule"}
    assert request.job_name in (None, "run_tst01")
    # The same scheduled time evaluated again asks for the same run: the daemon starts it once.
    with dg.instance_for_test() as instance:
        again = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [r.run_key for r in again.run_requests] == [request.run_key]


def test_the_next_ticks_follow_the_cron_expression_in_its_time_zone() -> None:
    """How the daemon computes the ticks of the schedule (Dagster's own iterator over its cron and time zone)."""
    from dagster._utils.schedules import cron_string_iterator

    from orchestration.definitions import defs

    schedule = defs().resolve_schedule_def("run_tst01_schedule")
    start = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC).timestamp()
    ticks = cron_string_iterator(start, schedule.cron_schedule, schedule.execution_timezone)
    assert [next(ticks).astimezone(dt.UTC).isoformat() for _ in range(2)] == \
        ["2026-03-29T04:00:00+00:00", "2026-03-30T04:00:00+00:00"]  # 06:00 in Amsterdam, winter then summer time


def test_an_enabled_schedule_runs_from_the_start_and_systems_without_one_get_none() -> None:
    from orchestration.definitions import platform_catalog

    system = platform_catalog().systems["TST01"]
    enabled = system.model_copy(update={"schedule": Schedule(cron="*/15 * * * *", timezone="UTC", enabled=True)})
    unscheduled = system.model_copy(update={"id": "TST02", "schedule": None})
    jobs = {s: dg.define_asset_job(f"run_{s.lower()}", selection=dg.AssetSelection.all()) for s in ("TST01", "TST02")}
    schedules, sensors = triggers({"TST01": enabled, "TST02": unscheduled}, jobs)
    assert [(s.name, s.job_name, s.cron_schedule, s.default_status) for s in schedules] == \
        [("run_tst01_schedule", "run_tst01", "*/15 * * * *", dg.DefaultScheduleStatus.RUNNING)]
    [sensor] = sensors
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sorted(t.job_name for t in sensor.targets) == ["run_tst01", "run_tst02"]
