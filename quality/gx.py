"""Running the quality gate's plans with Great Expectations 1.x: the only part of the gate that imports GX.

What GX costs decides the shape: importing it takes seconds (paid once per process, and only when
there is a batch to check), an ephemeral context with one data source much less, and each entity's
validation little. So one `GxValidator` (context + data source) serves a whole check execution; never
one per entity.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from quality.plan import PRESENCE_EXPECTATION, EntityPlan, PlannedExpectation
from quality.report import EntityVerdict, verdict
from secret_store.redact import remember_secret

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}  # for failed expectations
# The first pass: BASIC still reports counts (element_count, unexpected_count, a row count's
# observed_value), and with no examples asked for, its "unexpected values" query is a LIMIT 0 that
# reads nothing. (SUMMARY on a passing expectation costs extra full scans for nothing: unexpected
# values with a LIMIT that finds none, and the unexpected index list.) BOOLEAN_ONLY drops the counts.
CHECK_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
# The first pass already has all they report (a presence check: how many rows carry the key).
_COUNT_ONLY_EXPECTATIONS = ("ExpectTableRowCountToBeBetween", PRESENCE_EXPECTATION)


def gx_connection_string(url: str) -> str:
    """The warehouse URL for SQLAlchemy, on psycopg 3 (the driver the platform depends on)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError("the warehouse URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


class GxValidator:
    """One ephemeral GX context with one PostgreSQL data source, for a whole check execution.

    The data source materializes each query asset into a temporary table (`create_temp_table`): GX
    runs many queries per entity, and reading the records' JSON once instead of in every one of them
    makes a check of a big batch several times faster. A `ValidationDefinition` loads its batch once
    (`Batch.validate` would load it a second time), and the temporary tables are discarded once its
    suite has run; `close()` releases the connection.
    """

    def __init__(self, url: str) -> None:
        started = time.perf_counter()
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.import_seconds = time.perf_counter() - started
        self._gx = gx
        # The URL's password is masked in every message (a GX error may quote the connection).
        remember_secret(str(psycopg.conninfo.conninfo_to_dict(url).get("password") or ""))
        config = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        )
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.source = self.context.data_sources.add_postgres(
            "warehouse", connection_string=gx_connection_string(url), create_temp_table=True
        )
        self.startup_seconds = time.perf_counter() - started
        self._names: set[str] = set()

    def __enter__(self) -> GxValidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.source.get_execution_engine().close()
        self.source.get_engine().dispose()

    def _drop_temporary_tables(self) -> None:
        """Best effort: they go with the connection anyway."""
        import sqlalchemy as sa

        try:
            self.source.get_execution_engine().execute_query_in_transaction(sa.text("discard temp"))
        except Exception:  # noqa: BLE001
            pass

    def validate(self, plan: EntityPlan) -> EntityVerdict:
        """Run the plan's expectations, one suite per query asset; the verdict names every failure.

        Two passes per asset: first every expectation with `CHECK_FORMAT` (counts only, no examples:
        about one scan of the materialized batch per expectation, and GX bundles the counts), then,
        only if some failed, those again with `RESULT_FORMAT` and the index columns, for the values and
        record numbers a failure message quotes. A passing batch pays for the first pass alone.
        """
        started = time.perf_counter()
        results: dict[str, tuple[bool, dict[str, Any]]] = {}
        for asset_name, query in plan.queries.items():
            planned = [p for p in plan.expectations if p.asset == asset_name]
            first = self._run(plan, asset_name, query, planned, CHECK_FORMAT)
            results.update(first)
            failed = [p for p in planned if not first[p.key][0]
                      and p.expectation_type not in _COUNT_ONLY_EXPECTATIONS]  # nothing more to learn about those
            if failed:
                # The failing values themselves too (the text of each failed attribute), for the observed values.
                values = [p.context["value_column"] for p in failed if "value_column" in p.context]
                index = plan.index_columns[asset_name] + [v for v in dict.fromkeys(values)
                                                          if v not in plan.index_columns[asset_name]]
                detail = {**RESULT_FORMAT, "unexpected_index_column_names": index}
                results.update(self._run(plan, asset_name, query, failed, detail))
        return verdict(plan, results, seconds=time.perf_counter() - started)

    def _run(self, plan: EntityPlan, asset_name: str, query: str, planned: list[PlannedExpectation],
             result_format: dict[str, Any]) -> dict[str, tuple[bool, dict[str, Any]]]:
        """One GX validation of `planned` on the query asset: expectation key -> (success, result dict)."""
        import great_expectations.expectations as gxe

        name = f"{plan.entity}_{asset_name}_batch_{plan.batch_id}"
        while name in self._names:  # the same batch twice in one execution, or a second pass: keep names unique
            name += "_"
        self._names.add(name)
        suite = self.context.suites.add(self._gx.ExpectationSuite(name=name, expectations=[
            getattr(gxe, p.expectation_type)(**p.kwargs, meta={"key": p.key}) for p in planned
        ]))
        batch_definition = self.source.add_query_asset(name, query=query).add_batch_definition_whole_table("batch")
        validation = self.context.validation_definitions.add(
            self._gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
        )
        try:
            outcome = validation.run(result_format=result_format)
        finally:
            self._drop_temporary_tables()
        results: dict[str, tuple[bool, dict[str, Any]]] = {}
        for r in outcome.results:
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(f"{r.expectation_config.type} failed to run: "
                                   f"{r.exception_info.get('exception_message')}")
            results[r.expectation_config.meta["key"]] = (bool(r.success), dict(r.result or {}))
        return results
