# The platform image: the code location, each run's container, the Celery workers, the Dagster webserver and
# daemon, and the CLI (`docker compose run --rm platform dataplatform status`) all run it.
# Build: `docker compose build` (or `docker build -t dataplatform:local .`). Needs the package index, no database.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DATAPLATFORM_HOME=/var/lib/dataplatform \
    DAGSTER_HOME=/opt/dagster/home

# The account everything runs as (uid and gid 10001; numeric below, so any runtime knows it is not root).
RUN groupadd --system --gid 10001 dataplatform \
    && useradd --system --uid 10001 --gid dataplatform --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin dataplatform

WORKDIR /opt/dataplatform

# Dependencies first (their layer is reused while only the code changes): the project's dependencies and
# the stack's Dagster libraries (PostgreSQL storage, Docker run launcher), at the versions constraints.txt pins.
COPY pyproject.toml constraints.txt README.md ./
RUN python -m venv /opt/venv \
    && python -m pip install -c constraints.txt '.[stack]' \
    && python -m pip uninstall --yes dataplatform

# The code, installed in place: the dbt project and the declarations are found next to the packages.
COPY . .
RUN python -m pip install -c constraints.txt --no-deps -e . \
    && mkdir -p /var/lib/dataplatform /var/lib/dagster/compute_logs /var/lib/dagster/storage /opt/dagster/home \
    && cp docker/dagster.yaml /opt/dagster/home/dagster.yaml \
    && cp docker/workspace.yaml /opt/dagster/ \
    && chown -R dataplatform:dataplatform dbt_project /var/lib/dataplatform /var/lib/dagster /opt/dagster/home \
    && chmod 0700 /var/lib/dataplatform /var/lib/dagster /opt/dagster/home

# The code and the virtual environment stay root's (read-only to the platform); only dbt_project (generated
# files, dbt's target and logs), the state folders and DAGSTER_HOME are the platform account's.
USER 10001:10001

# dbt's manifest, prepared now from the bundled declarations (no database, no secrets: see
# codegen/prepare_image.py), so a container starts without parsing.
RUN python -m codegen.prepare_image

CMD ["dataplatform", "--help"]
