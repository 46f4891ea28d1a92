# The commands a newcomer needs. Each creates the virtual environment first if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install run test lint dev worker validate status clean bench

$(BIN)/dataplatform: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/dataplatform

## run: the demo, end to end: test-system data -> landing -> quality -> bronze -> silver -> gold, with a summary
run: install
	$(BIN)/dataplatform demo

## test: the whole test suite (unit, definitions, end to end, dbt build) on a real embedded PostgreSQL
test: install
	$(BIN)/python -m pytest

## lint: ruff on the Python, sqlfluff (dbt templater) on the gold and generated dbt models, hadolint on the Dockerfile
lint: install
	$(BIN)/ruff check .
	$(BIN)/dataplatform lint-sql
	$(BIN)/hadolint Dockerfile

## dev: the Dagster UI on the same warehouse
dev: install
	$(BIN)/dataplatform dev

## worker: a Celery worker for the platform's steps (set DATAPLATFORM_EXECUTOR=celery and the broker's URL first)
worker: install
	$(BIN)/dataplatform worker

## bench: the benchmark: our pipeline against raw COPY and a plain dlt pipeline; e.g. `make bench SIZE=10000`
SIZE ?= 10000,100000,1000000
bench: install
	$(BIN)/python -m bench.run --sizes $(SIZE)
	$(BIN)/python -m bench.rest
	$(BIN)/python -m bench.files_csv

validate: install
	$(BIN)/dataplatform validate

status: install
	$(BIN)/dataplatform status

clean:
	rm -rf $(VENV) .dataplatform dbt_project/target dbt_project/logs dbt_project/models/*/generated
