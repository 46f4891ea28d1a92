"""DATAPLATFORM_LOG_FORMAT=json: log lines are JSON objects carrying the run id and batch id, and a secret value
never appears in them, whether written by the platform's loggers or by Dagster's (a real in-process run)."""

from __future__ import annotations

import io
import json
import logging

import dagster as dg
import pytest

from observability.logs import configure_logging, correlation, handler, json_logs, set_batch, set_run
from orchestration.log_format import json_lines_logger
from secret_store.redact import remember_secret

SECRET = "tok-3f9a-very-secret"


@pytest.fixture(autouse=True)
def json_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLATFORM_LOG_FORMAT", "json")
    remember_secret(SECRET)
    set_run(None)  # an in-process run of an earlier test leaves its ids in this (the test session's) context
    set_batch(None)


def test_platform_lines_carry_run_and_batch_and_mask_secrets() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("dataplatform.test_json_logs")
    logger.addHandler(handler(stream))
    logger.setLevel(logging.INFO)
    try:
        logger.info("before any run")
        with correlation(run_id="run-1"):
            logger.info("landing with token %s", SECRET)
            with correlation(batch_id=12):
                logger.warning("quality of batch")
            logger.info("after the batch")
    finally:
        logger.handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["logger"], r["message"], r["run_id"], r["batch_id"]) for r in lines] == [
        ("INFO", "dataplatform.test_json_logs", "before any run", None, None),
        ("INFO", "dataplatform.test_json_logs", "landing with token ***", "run-1", None),
        ("WARNING", "dataplatform.test_json_logs", "quality of batch", "run-1", "12"),
        ("INFO", "dataplatform.test_json_logs", "after the batch", "run-1", None),
    ]
    assert SECRET not in stream.getvalue()


def test_the_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert json_logs()
    monkeypatch.setenv("DATAPLATFORM_LOG_FORMAT", "TEXT")
    assert not json_logs()
    monkeypatch.setenv("DATAPLATFORM_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match="DATAPLATFORM_LOG_FORMAT='yaml': use 'json' or 'text'"):
        configure_logging()


def test_dagster_run_lines_carry_the_run_id_and_the_batch(capfd: pytest.CaptureFixture[str]) -> None:
    @dg.op
    def land(context) -> None:  # (no annotation: this module uses postponed annotations)
        set_batch(77)  # as landing does once it has opened the batch
        context.log.info(f"landing with token {SECRET}")

    @dg.job(logger_defs={"console": json_lines_logger})
    def job() -> None:
        land()

    capfd.readouterr()
    result = job.execute_in_process(run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}})
    err = capfd.readouterr().err
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert records and all(r["run_id"] == result.run_id for r in records)
    mine = [r for r in records if "landing with token" in r["message"]]
    assert [(r["message"], r["batch_id"], r["step"]) for r in mine] == [("landing with token ***", "77", "land")]
    assert SECRET not in err
    set_batch(None)


def test_what_a_tool_prints_becomes_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from observability.logs import json_stdout

    with correlation(run_id="run-9", batch_id=3), json_stdout("dbt"):
        print("Running with dbt=1.11")
        print(f"1 of 5 OK created model with {SECRET}\n")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["logger"], r["message"], r["run_id"], r["batch_id"]) for r in lines] == [
        ("dbt", "Running with dbt=1.11", "run-9", "3"), ("dbt", "1 of 5 OK created model with ***", "run-9", "3")]


def test_dlt_lines_stay_json_when_dlt_sets_up_its_logger(capsys: pytest.CaptureFixture[str]) -> None:
    from dlt.common import logger as dlt_logging
    from dlt.common.configuration.specs import RuntimeConfiguration

    from observability.logs import route_dlt_logs

    dlt = logging.getLogger("dlt")
    saved = list(dlt.handlers)
    for h in saved:  # an earlier test's set-up bound its handler to that test's captured stderr
        dlt.removeHandler(h)
    try:
        route_dlt_logs()
        # What dlt does when a pipeline initialises its runtime: reuse the logger's first handler, set its format.
        dlt_logging._create_logger("dlt", "INFO", RuntimeConfiguration().log_format, "dlt", {})
        with correlation(run_id="run-9", batch_id=4):
            dlt.warning("merging arrow schema with token %s", SECRET)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert [(r["logger"], r["level"], r["run_id"], r["batch_id"]) for r in lines] == [
            ("dlt", "WARNING", "run-9", "4")]
        assert SECRET not in lines[0]["message"]
    finally:
        for h in list(dlt.handlers):
            dlt.removeHandler(h)
        for h in saved:
            dlt.addHandler(h)
