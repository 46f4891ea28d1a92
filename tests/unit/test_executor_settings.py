"""DATAPLATFORM_EXECUTOR and the Celery settings: a wrong value stops with one message naming the variable; the
executor's config refers to the broker and backend URLs by variable name, never by value; `dataplatform run` and
`dataplatform worker` refuse to start (nothing written, no warehouse started) when the broker does not answer."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cli.main import EXIT_INVALID, EXIT_WAREHOUSE, main
from orchestration.executor import (
    BACKEND_ENV,
    BROKER_ENV,
    EXECUTOR_ENV,
    QUEUE_ENV,
    ExecutorSettingError,
    celery_app_args,
    celery_config,
    executor_kind,
    platform_executor,
)

BROKER = "amqp://platform:br0ker-Pa55@127.0.0.1:5672//"


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (EXECUTOR_ENV, BROKER_ENV, BACKEND_ENV, QUEUE_ENV, "DATAPLATFORM_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_in_process_is_the_default_and_keeps_dagsters_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert executor_kind() == "in_process"
    assert platform_executor() is None
    monkeypatch.setenv(EXECUTOR_ENV, "in_process")
    assert platform_executor() is None


def test_an_unknown_executor_names_the_variable_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "celeri")
    with pytest.raises(ExecutorSettingError) as err:
        executor_kind()
    assert str(err.value) == "DATAPLATFORM_EXECUTOR='celeri' is not an executor: set it to 'in_process' (the default)" \
                             " or 'celery'"


def test_celery_without_a_broker_names_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    with pytest.raises(ExecutorSettingError, match="needs the broker's URL in DATAPLATFORM_CELERY_BROKER_URL"):
        platform_executor()


def test_the_executor_config_holds_variable_names_not_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    monkeypatch.setenv(BROKER_ENV, BROKER)
    assert celery_config() == {"broker": {"env": BROKER_ENV}, "backend": "rpc://",
                               "config_source": {"task_default_queue": "dagster"}}
    monkeypatch.setenv(BACKEND_ENV, "redis://:backend-Pa55@127.0.0.1:6379/1")
    monkeypatch.setenv(QUEUE_ENV, "home-server")
    assert celery_config() == {"broker": {"env": BROKER_ENV}, "backend": {"env": BACKEND_ENV},
                               "config_source": {"task_default_queue": "home-server"}}
    assert platform_executor().name == "celery"
    # A worker's app is built from the same settings, resolved in its own process.
    args = celery_app_args()
    assert (args["broker"], args["backend"]) == (BROKER, "redis://:backend-Pa55@127.0.0.1:6379/1")
    assert args["config_source"].task_default_queue == "home-server"


@pytest.mark.parametrize("command", [["worker"], ["run", "--system", "TST01"]])
def test_a_broker_that_does_not_answer_stops_the_command_naming_it_without_its_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        command: list[str]) -> None:
    port = _closed_port()
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    monkeypatch.setenv(BROKER_ENV, f"amqp://platform:br0ker-Pa55@127.0.0.1:{port}//")
    with pytest.raises(SystemExit) as exited:
        main(command)
    assert exited.value.code == EXIT_WAREHOUSE
    message = capsys.readouterr().err
    assert f"error: the Celery broker at amqp://platform:***@127.0.0.1:{port}// does not answer" in message
    assert message.rstrip().endswith(f"start it, or fix {BROKER_ENV}")
    assert "br0ker-Pa55" not in message
    assert not (tmp_path / "home" / "postgres").exists()  # no warehouse was started


def test_a_worker_without_a_broker_says_which_variable_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["worker"])
    assert exited.value.code == EXIT_INVALID
    assert "needs the broker's URL in DATAPLATFORM_CELERY_BROKER_URL" in capsys.readouterr().err
