"""Unit tests of the quality gate's planning and reporting (quality.plan, quality.report: no Great Expectations):
which expectations an entity gets from its model and its declarations, the query columns they run
on, and the messages made from GX's results. The GX runs themselves are in tests/e2e/test_quality_gate.py."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metadata.catalog import DEFAULT_FOLDER, Catalog, load_catalog
from metadata.columns import Column
from quality.plan import (
    RECORDS,
    ROWS,
    EntityPlan,
    PreviousBatch,
    kind_column_names,
    plan_entity,
)
from quality.report import verdict
from secret_store.env import EnvSecretStore

MODELS = """
    from __future__ import annotations

    import datetime as dt

    from pydantic import BaseModel

    from metadata.entity_model import EntityModel, Key


    class Place(BaseModel):
        city: str
        zip: str | None = None


    class Thing(EntityModel):
        thing_id: Key[int]
        label: str
        note: str | None = None
        born: dt.date
        seen_at: dt.datetime
        score: float
        active: bool
        tags: list
        place: Place
        alt: Place | None = None
"""


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    return load_catalog(DEFAULT_FOLDER, secrets=EnvSecretStore(env_file=Path("/nonexistent/.env")))


@pytest.fixture
def thing_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Catalog]:
    """The bundled declarations with `owner` modelled by Thing (every type, Optional and nested)."""
    (tmp_path / "quality_plan_models.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, folder)
    data = json.loads((folder / "entities.json").read_text())
    data["entities"][0].update(model="quality_plan_models:Thing", quality={})
    (folder / "entities.json").write_text(json.dumps(data))
    yield load_catalog(folder, secrets=EnvSecretStore(env_file=tmp_path / "absent.env"))
    sys.modules.pop("quality_plan_models", None)


def by_key(plan: EntityPlan) -> dict[str, Any]:
    return {p.key: (p.asset, p.expectation_type, p.kwargs) for p in plan.expectations}


def test_owner_gets_key_attribute_and_declared_row_count_expectations(bundled: Catalog) -> None:
    plan = plan_entity(bundled, bundled.entities["owner"], 7, previous=PreviousBatch(6, 20))
    assert by_key(plan) == {
        "key_present.owner_id": (ROWS, "ExpectColumnValuesToNotBeNull", {"column": "owner_id"}),
        "key_unique": (ROWS, "ExpectColumnValuesToBeUnique", {"column": "owner_id"}),
        "attribute.owner_id": (ROWS, "ExpectColumnValuesToBeInSet", {"column": "owner_id__type", "value_set": ["integer"]}),
        "attribute.name": (ROWS, "ExpectColumnValuesToBeInSet", {"column": "name__type", "value_set": ["string"]}),
        "attribute.email": (ROWS, "ExpectColumnValuesToBeInSet", {"column": "email__type", "value_set": ["string"]}),
        "attribute.address_street": (ROWS, "ExpectColumnValuesToBeInSet",
                                     {"column": "address_street__type", "value_set": ["string"]}),
        "attribute.address_city": (ROWS, "ExpectColumnValuesToBeInSet",
                                   {"column": "address_city__type", "value_set": ["string"]}),
        "attribute.address_postcode": (ROWS, "ExpectColumnValuesToBeInSet",
                                       {"column": "address_postcode__type", "value_set": ["string"]}),
        "row_count": (ROWS, "ExpectTableRowCountToBeBetween", {"min_value": 1, "max_value": 10_000_000}),
        # 80% and 125% of the previous batch's 20 rows
        "row_count_vs_previous_batch": (ROWS, "ExpectTableRowCountToBeBetween", {"min_value": 16, "max_value": 25}),
    }
    assert plan.queries.keys() == {ROWS}
    assert plan.index_columns == {ROWS: ["_record_no"]}
    assert plan.unit == "record" and plan.notes == []
    subjects = {p.key: p.subject for p in plan.expectations}
    assert subjects["attribute.address_city"] == "attribute address.city"
    assert subjects["key_unique"] == "primary key owner_id"


def test_child_entity_has_a_compound_key_and_a_list_check_on_its_records(bundled: Catalog) -> None:
    plan = plan_entity(bundled, bundled.entities["vehicle_option"], 3, previous=None)
    expectations = by_key(plan)
    assert expectations["key_unique"] == (ROWS, "ExpectCompoundColumnsToBeUnique",
                                          {"column_list": ["vehicle_id", "code"], "ignore_row_if": "any_value_is_missing"})
    assert expectations["attribute.price"][2] == {"column": "price__type", "value_set": ["integer", "number"]}
    assert expectations["list_present"] == (RECORDS, "ExpectColumnValuesToBeInSet",
                                            {"column": "list__type", "value_set": ["array"]})
    assert expectations["row_count"][2] == {"min_value": None, "max_value": 50_000_000}
    assert "row_count_vs_previous_batch" not in expectations
    assert plan.notes == ["row_count_vs_previous_batch: skipped, no previous successful batch of this entity"]
    assert plan.unit == "item"
    assert plan.index_columns == {ROWS: ["_record_no", "_item_no"], RECORDS: ["_record_no"]}
    assert "jsonb_array_elements" in plan.queries[ROWS] and "'{\"options\"}'" in plan.queries[ROWS]
    assert plan.queries[RECORDS].startswith("select landing._record_no")
    assert plan.queries[RECORDS].endswith("where landing._batch_id = 3")
    parent = next(p for p in plan.expectations if p.key == "attribute.vehicle_id")
    assert parent.subject == "attribute the parent record's vehicle_id"


def test_previous_batch_with_no_rows_skips_the_comparison(bundled: Catalog) -> None:
    plan = plan_entity(bundled, bundled.entities["vehicle"], 3, previous=PreviousBatch(2, 0))
    assert "row_count_vs_previous_batch" not in by_key(plan)
    assert plan.notes == ["row_count_vs_previous_batch: skipped, previous batch 2 had no rows"]


@pytest.mark.parametrize("previous, low, high", [(20, 16, 25), (3, 3, 3), (7, 6, 8), (1000, 800, 1250)])
def test_percent_bounds_round_inwards(bundled: Catalog, previous: int, low: int, high: int) -> None:
    plan = plan_entity(bundled, bundled.entities["vehicle"], 3, previous=PreviousBatch(2, previous))
    assert by_key(plan)["row_count_vs_previous_batch"][2] == {"min_value": low, "max_value": high}


def test_declared_types_optional_and_nested_attributes(thing_catalog: Catalog) -> None:
    plan = plan_entity(thing_catalog, thing_catalog.entities["owner"], 1, previous=None)
    value_sets = {p.key.removeprefix("attribute."): p.kwargs["value_set"]
                  for p in plan.expectations if p.key.startswith("attribute.")}
    maybe = ["null", "missing"]
    assert value_sets == {
        "thing_id": ["integer"],
        "label": ["string"],
        "note": ["string", *maybe],
        "born": ["date"],
        "seen_at": ["timestamp"],
        "score": ["integer", "number"],
        "active": ["boolean"],
        "tags": ["object", "array"],
        "place_city": ["string"],  # required inside a required object
        "place_zip": ["string", *maybe],
        "alt_city": ["string", *maybe],  # required, but inside an Optional object
        "alt_zip": ["string", *maybe],
    }
    assert plan.expectations[-1].key == "attribute.alt_zip"  # no declared checks: quality is {}
    query = plan.queries[ROWS]
    assert "pg_input_is_valid(" in query and "'timestamptz'" in query
    fallback = plan_entity(thing_catalog, thing_catalog.entities["owner"], 1, previous=None, pg_input_is_valid=False)
    assert "pg_input_is_valid" not in fallback.queries[ROWS]
    assert r"E'^\\d{4}-\\d{2}-\\d{2}$'" in fallback.queries[ROWS]  # before PostgreSQL 16: ISO patterns


def test_queries_select_one_batch_and_start_with_select(bundled: Catalog) -> None:
    for entity in bundled.entities.values():
        plan = plan_entity(bundled, entity, 42, previous=None)
        for query in plan.queries.values():
            assert query.startswith("select ")  # GX query assets must start with SELECT
            assert query.endswith("where landing._batch_id = 42")
            assert ":" not in query.replace("::", "")  # SQLAlchemy would read ':name' as a bind parameter


def test_kind_column_names_stay_valid_identifiers() -> None:
    long = "a" * 60
    columns = [Column(name, "text", (name,), "record", False, 2, False) for name in ("x", "x__type", long)]
    assert kind_column_names(columns) == {"x": "_type_0", "x__type": "x__type__type", long: "_type_2"}


def gx(success: bool, **result: Any) -> tuple[bool, dict[str, Any]]:
    return success, result


def test_messages_name_entity_subject_and_observed_values(bundled: Catalog) -> None:
    plan = plan_entity(bundled, bundled.entities["vehicle_option"], 9, previous=PreviousBatch(8, 200))
    results = {p.key: gx(True, element_count=100, unexpected_count=0) for p in plan.expectations}
    results["list_present"] = gx(False, element_count=50, unexpected_count=2,
                                 partial_unexpected_counts=[{"value": "missing", "count": 1}, {"value": "object", "count": 1}],
                                 partial_unexpected_index_list=[{"_record_no": 4, "list__type": "missing"},
                                                                {"_record_no": 9, "list__type": "object"}])
    results["key_unique"] = gx(False, element_count=100, unexpected_count=2,
                               partial_unexpected_list=[{"vehicle_id": "V1", "code": "NAV"}] * 2)
    results["attribute.price"] = gx(False, element_count=100, unexpected_count=3,
                                    partial_unexpected_counts=[{"value": "string", "count": 3}],
                                    partial_unexpected_index_list=[{"_record_no": 1, "_item_no": 2, "price__type": "string"}])
    results["row_count"] = gx(True, observed_value=100)
    results["row_count_vs_previous_batch"] = gx(False, observed_value=100)
    v = verdict(plan, results)
    assert not v.passed and v.rows == 100
    assert [o.key for o in v.failed] == ["key_unique", "attribute.price", "list_present", "row_count_vs_previous_batch"]
    assert v.message == (
        "quality gate failed for vehicle_option (batch 9), 4 expectation(s): "
        "primary key (vehicle_id, code): 2 of 100 items share a key with another, duplicated keys: ('V1', 'NAV'); "
        "attribute price: 3 of 100 items are missing it or have the wrong type: found string, expected integer or number"
        " (landing record #1 item 2); "
        "list options: 2 of 50 records have no list there: found missing, object, expected array"
        " (landing records #4, #9); "
        "row count versus the previous batch: 100 items, 50.0% of the 200 of previous batch 8;"
        " expected between 70% and 150% (140 to 300)"
    )
    observed = {o.key: o.observed for o in v.outcomes}
    assert observed["attribute.price"] == {"rows": 100, "unexpected": 3, "unexpected_types": {"string": 3}}
    assert observed["row_count_vs_previous_batch"]["percent_of_previous"] == 50.0
    assert observed["key_unique"]["duplicated_keys"] == [["V1", "NAV"]]


def test_a_passing_verdict_has_no_message(bundled: Catalog) -> None:
    plan = plan_entity(bundled, bundled.entities["owner"], 2, previous=None)
    results = {p.key: gx(True, element_count=20, unexpected_count=0, observed_value=20) for p in plan.expectations}
    v = verdict(plan, results)
    assert v.passed and v.message is None and v.rows == 20
    summaries = {o.key: o.summary for o in v.outcomes}
    assert summaries["key_present.owner_id"] == "primary key owner_id: present in all 20 records"
    assert summaries["key_unique"] == "primary key owner_id: unique in all 20 records"
    assert summaries["attribute.email"] == "attribute email: all 20 records as declared"
    assert summaries["row_count"] == "row count: 20 records"
