"""Which Dagster executor runs the platform's steps: in this process (the default), or on Celery workers.

One setting, DATAPLATFORM_EXECUTOR, chooses. With `celery`, every job of the definitions runs its steps as
Celery tasks on whichever worker (`dataplatform worker`, on any machine) takes them from the broker's queue.
The broker and result-backend URLs may hold passwords: the executor's config refers to them by the name of
their environment variable (`{"env": ...}`), so neither run config, Dagster's run storage, the UI nor a Celery
message ever holds the URL itself; each process reads it from its own environment.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

EXECUTOR_ENV = "DATAPLATFORM_EXECUTOR"
BROKER_ENV = "DATAPLATFORM_CELERY_BROKER_URL"
BACKEND_ENV = "DATAPLATFORM_CELERY_BACKEND_URL"
QUEUE_ENV = "DATAPLATFORM_CELERY_QUEUE"
IN_PROCESS, CELERY = "in_process", "celery"
DEFAULT_BACKEND = "rpc://"
DEFAULT_QUEUE = "dagster"  # dagster-celery's own default: a plain `dagster-celery worker start` serves it too


class ExecutorSettingError(ValueError):
    """The executor settings are wrong; the message names the variable, its value and what to set."""


def executor_kind() -> str:
    """`in_process` or `celery`, from DATAPLATFORM_EXECUTOR (checked: a typo must not silently run in-process)."""
    kind = os.environ.get(EXECUTOR_ENV, "").strip() or IN_PROCESS
    if kind not in (IN_PROCESS, CELERY):
        raise ExecutorSettingError(f"{EXECUTOR_ENV}={kind!r} is not an executor: set it to {IN_PROCESS!r} (the"
                                   f" default) or {CELERY!r}")
    return kind


def celery_queue() -> str:
    return os.environ.get(QUEUE_ENV, "").strip() or DEFAULT_QUEUE


def celery_config() -> dict[str, Any]:
    """The Celery executor's config: URLs as environment references, resolved in each process that uses them."""
    if not os.environ.get(BROKER_ENV, "").strip():
        raise ExecutorSettingError(f"{EXECUTOR_ENV}={CELERY} needs the broker's URL in {BROKER_ENV}, e.g."
                                   " amqp://user:password@rabbitmq:5672// or redis://redis:6379/0")
    backend: Any = {"env": BACKEND_ENV} if os.environ.get(BACKEND_ENV, "").strip() else DEFAULT_BACKEND
    # Steps are routed to this queue (dagster-celery submits each to `task_default_queue`); workers listen on it.
    return {"broker": {"env": BROKER_ENV}, "backend": backend,
            "config_source": {"task_default_queue": celery_queue()}}


def platform_executor() -> dg.ExecutorDefinition | None:
    """The executor every job of the definitions uses: None keeps Dagster's default for runs launched from the
    UI (the CLI runs in-process anyway); the Celery executor, configured from the environment, otherwise."""
    if executor_kind() == IN_PROCESS:
        return None
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(), name=CELERY)


def celery_app_args() -> dict[str, Any]:
    """The arguments the executor builds its Celery app from, resolved here: a worker's app must match them."""
    from dagster_celery.executor import CeleryExecutor

    config = celery_config()
    backend = os.environ[BACKEND_ENV] if isinstance(config["backend"], dict) else config["backend"]
    return CeleryExecutor.for_cli(broker=os.environ[BROKER_ENV], backend=backend,
                                  config_source=config["config_source"]).app_args()


def broker_problem(url: str, *, timeout: float = 5.0) -> str | None:
    """None if the Celery broker at `url` answers, else why not (the URL shown without its password)."""
    from kombu import Connection

    from warehouse.embedded import redact_url

    try:
        with Connection(url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - kombu raises the transport's own errors: each means "no answer"
        return f"the Celery broker at {redact_url(url)} does not answer ({type(err).__name__}: {err})"
    return None
