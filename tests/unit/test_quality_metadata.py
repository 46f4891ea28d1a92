"""Unit tests of the quality declarations in entities.json: their shape, and every validation problem
(file, object and field named), on private copies of the bundled declarations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metadata.catalog import DEFAULT_FOLDER, MetadataError, Problem, load_catalog
from metadata.models import QUALITY_CHECK_NAMES, QualityChecks, RowCountCheck, RowCountVsPreviousBatchCheck
from secret_store.env import EnvSecretStore

OWNER = "entities[0] (owner)"






def set_quality(folder: Path, entity: str, quality: Any) -> None:
    path = folder / "entities.json"
    data = json.loads(path.read_text())
    record = next(e for e in data["entities"] if e["name"] == entity)
    if quality is None:
        record.pop("quality", None)
    else:
        record["quality"] = quality
    path.write_text(json.dumps(data, indent=2))


def problems_of(folder: Path, store: EnvSecretStore) -> list[Problem]:
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    return excinfo.value.problems


def only(problems: list[Problem], file: str, obj: str, field: str) -> Problem:
    assert [(p.file, p.object, p.field) for p in problems] == [(file, obj, field)], problems
    return problems[0]


def test_bundled_entities_declare_row_count_checks(store: EnvSecretStore) -> None:
    catalog = load_catalog(DEFAULT_FOLDER, secrets=store)
    quality = {name: e.quality for name, e in catalog.entities.items()}
    assert quality["owner"] == QualityChecks(
        row_count=RowCountCheck(min=1, max=10_000_000),
        row_count_vs_previous_batch=RowCountVsPreviousBatchCheck(min_percent=80, max_percent=125),
    )
    assert quality["vehicle"] == quality["owner"]
    assert quality["vehicle_option"] == QualityChecks(
        row_count=RowCountCheck(max=50_000_000),
        row_count_vs_previous_batch=RowCountVsPreviousBatchCheck(min_percent=70, max_percent=150),
    )


def test_quality_is_optional_and_then_declares_nothing(folder: Path, store: EnvSecretStore) -> None:
    set_quality(folder, "owner", None)
    assert load_catalog(folder, secrets=store).entities["owner"].quality == QualityChecks()
    set_quality(folder, "owner", {})
    assert load_catalog(folder, secrets=store).entities["owner"].quality == QualityChecks()


def test_one_bound_is_enough(folder: Path, store: EnvSecretStore) -> None:
    set_quality(folder, "owner", {"row_count": {"max": 5}, "row_count_vs_previous_batch": {"min_percent": 90.5}})
    quality = load_catalog(folder, secrets=store).entities["owner"].quality
    assert quality.row_count == RowCountCheck(min=None, max=5)
    assert quality.row_count_vs_previous_batch == RowCountVsPreviousBatchCheck(min_percent=90.5, max_percent=None)


def test_unknown_check_name_is_a_problem_naming_file_entity_and_field(folder: Path, store: EnvSecretStore) -> None:
    set_quality(folder, "owner", {"row_count": {"min": 1}, "row_count_versus_last": {"min_percent": 80}})
    p = only(problems_of(folder, store), "entities.json", OWNER, "quality.row_count_versus_last")
    assert p.message.startswith("unknown quality check 'row_count_versus_last'; known checks: "
                                "row_count, row_count_vs_previous_batch")
    assert "Extra inputs are not permitted" in p.message
    assert str(p).startswith("entities.json: entities[0] (owner): field 'quality.row_count_versus_last': unknown")


def test_known_check_names_are_the_model_fields() -> None:
    assert QUALITY_CHECK_NAMES == ("row_count", "row_count_vs_previous_batch")


def test_unknown_parameter_of_a_check(folder: Path, store: EnvSecretStore) -> None:
    set_quality(folder, "vehicle", {"row_count": {"minimum": 1}})
    problems = problems_of(folder, store)
    fields = {p.field: p.message for p in problems}
    assert "Extra inputs are not permitted" in fields["quality.row_count.minimum"]
    assert [p.object for p in problems] == ["entities[1] (vehicle)"] * len(problems)


@pytest.mark.parametrize("quality, field, message", [
    ({"row_count": {}}, "quality.row_count", "give at least one of 'min' and 'max'"),
    ({"row_count": {"min": 10, "max": 5}}, "quality.row_count", "'min' (10) is greater than 'max' (5)"),
    ({"row_count": {"min": -1}}, "quality.row_count.min", "greater than or equal to 0"),
    ({"row_count": {"max": "many"}}, "quality.row_count.max", "valid integer"),
    ({"row_count": 5}, "quality.row_count", "valid dictionary"),
    ({"row_count_vs_previous_batch": {}}, "quality.row_count_vs_previous_batch",
     "give at least one of 'min_percent' and 'max_percent'"),
    ({"row_count_vs_previous_batch": {"min_percent": 120, "max_percent": 80}}, "quality.row_count_vs_previous_batch",
     "'min_percent' (120.0) is greater than 'max_percent' (80.0)"),
    ({"row_count_vs_previous_batch": {"max_percent": 0}}, "quality.row_count_vs_previous_batch.max_percent",
     "greater than 0"),
    ("strict", "quality", "valid dictionary"),
])
def test_invalid_check_parameters(folder: Path, store: EnvSecretStore, quality: Any, field: str, message: str) -> None:
    set_quality(folder, "owner", quality)
    p = only(problems_of(folder, store), "entities.json", OWNER, field)
    assert message in p.message


def test_quality_problems_are_listed_with_the_others(folder: Path, store: EnvSecretStore) -> None:
    set_quality(folder, "owner", {"rows": {"min": 1}})
    set_quality(folder, "vehicle_option", {"row_count": {"min": 3, "max": 2}})
    problems = problems_of(folder, store)
    assert {(p.object, p.field) for p in problems} == {
        (OWNER, "quality.rows"), ("entities[2] (vehicle_option)", "quality.row_count")}


