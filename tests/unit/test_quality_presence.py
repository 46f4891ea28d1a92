"""Unit tests of `attributes_present`: an Optional attribute that no record of the batch carries is
flagged as a warning (default), an error, or not looked for; a required one is checked in every record
by its type check already. Also the option's validation in entities.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_quality_plan import MODELS, gx  # noqa: F401  (the Thing model: every type, Optional and nested)

from metadata.catalog import DEFAULT_FOLDER, MetadataError, load_catalog
from quality.plan import PRESENCE_EXPECTATION, ROWS, plan_entity
from quality.report import verdict
from secret_store.env import EnvSecretStore


def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quality: dict[str, Any]) -> Any:
    import sys
    import textwrap

    (tmp_path / "quality_plan_models.py").write_text(textwrap.dedent(MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("quality_plan_models", None)
    folder = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, folder)
    data = json.loads((folder / "entities.json").read_text())
    data["entities"][0].update(model="quality_plan_models:Thing", quality=quality)
    (folder / "entities.json").write_text(json.dumps(data))
    return load_catalog(folder, secrets=EnvSecretStore(env_file=tmp_path / "absent.env"))


def presence(plan: Any) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {p.key: (p.expectation_type, p.severity, p.kwargs) for p in plan.expectations if p.key.startswith("present.")}


def test_optional_attributes_get_a_presence_check_with_the_declared_severity(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    things = catalog(tmp_path, monkeypatch, {})
    plan = plan_entity(things, things.entities["owner"], 1, previous=None)
    checks = presence(plan)
    assert set(checks) == {"present.note", "present.place_zip", "present.alt_city", "present.alt_zip"}
    assert checks["present.note"] == (PRESENCE_EXPECTATION, "warning",
                                      {"column": "note__type", "value_set": ["missing"], "mostly": 1e-12})
    keys = [p.key for p in plan.expectations]
    assert keys.index("present.note") == keys.index("attribute.note") - 1  # beside its type check
    assert all(p.asset == ROWS for p in plan.expectations if p.key.startswith("present."))


@pytest.mark.parametrize("setting, expected", [("error", {"error"}), ("off", set())])
def test_the_severity_follows_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str,
                                          expected: set[str]) -> None:
    things = catalog(tmp_path, monkeypatch, {"attributes_present": setting})
    plan = plan_entity(things, things.entities["owner"], 1, previous=None)
    assert {severity for _, severity, _ in presence(plan).values()} == expected


def _results(plan: Any, missing_everywhere: str) -> dict[str, Any]:
    results = {p.key: gx(True, element_count=10, unexpected_count=0) for p in plan.expectations}
    results[missing_everywhere] = gx(False, element_count=10, unexpected_count=10)
    return results


def test_a_warning_lets_the_entity_pass_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    things = catalog(tmp_path, monkeypatch, {})
    plan = plan_entity(things, things.entities["owner"], 4, previous=None)
    v = verdict(plan, _results(plan, "present.note"))
    assert v.passed and v.failed == []
    assert [o.key for o in v.warnings] == ["present.note"]
    assert v.message == ("quality gate passed for owner (batch 4) with 1 warning(s): attribute note: carried by none"
                         " of the 10 records (no record has the key)")
    observed = {o.key: o.observed for o in v.outcomes}
    assert observed["present.note"] == {"rows": 10, "carried": 0}
    assert observed["present.alt_zip"] == {"rows": 10, "carried": 10}


def test_an_error_fails_the_entity_and_an_empty_batch_is_not_flagged(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    things = catalog(tmp_path, monkeypatch, {"attributes_present": "error"})
    plan = plan_entity(things, things.entities["owner"], 4, previous=None)
    v = verdict(plan, _results(plan, "present.note"))
    assert not v.passed and [o.key for o in v.failed] == ["present.note"]
    assert v.message == ("quality gate failed for owner (batch 4), 1 expectation(s): attribute note: carried by none"
                         " of the 10 records (no record has the key)")
    empty = {p.key: gx(True, element_count=0, unexpected_count=0) for p in plan.expectations}
    assert verdict(plan, empty).passed  # no records: the row count checks speak for that


def test_an_unknown_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MetadataError) as excinfo:
        catalog(tmp_path, monkeypatch, {"attributes_present": "warn"})
    [problem] = excinfo.value.problems
    assert (problem.file, problem.field) == ("entities.json", "quality.attributes_present")
    assert "'error', 'warning' or 'off'" in problem.message and "(got 'warn')" in problem.message
