"""The Celery app a platform worker runs (`celery -A orchestration.celery_worker worker`, which `dataplatform
worker` starts): dagster-celery's step task on an app built exactly as the executor builds its own, from the
same environment (broker, backend, queue), so the worker takes the steps the platform's runs submit.

A task names the job by its code pointer (`orchestration.definitions.platform_job`) and the Dagster instance
by its storage settings; the worker loads the job from this project's code and writes events to that
storage. Importing this module reads the environment: only a worker imports it.
"""

from __future__ import annotations

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from orchestration.executor import celery_app_args

app = make_app(celery_app_args())
execute_plan = create_task(app)
