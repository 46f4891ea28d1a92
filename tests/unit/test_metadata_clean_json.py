"""`validate` refuses declaration files that are not clean JSON: bytes that are not UTF-8, a key given
twice in one object (plain JSON readers silently keep the last), and NaN / Infinity / -Infinity (which
Python's reader accepts as numbers). Each problem names the file, the object and the field."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from metadata.catalog import DEFAULT_FOLDER, MetadataError, Problem, load_catalog
from secret_store.env import ENV_PREFIX, EnvSecretStore


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the bundled declarations, and no secret from the developer's shell."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    target = tmp_path / "declarations"
    shutil.copytree(DEFAULT_FOLDER, target)
    return target


def problems_of(folder: Path) -> list[Problem]:
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=EnvSecretStore(env_file=folder / "absent.env"))
    return excinfo.value.problems


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_key_given_twice_names_the_object_the_field_and_both_values(folder: Path) -> None:
    replace_once(folder / "entities.json", '"load_type": "full",', '"load_type": "full", "load_type": "delta",')
    replace_once(folder / "entities.json", '"min": 1,', '"min": 1, "min": 5,')
    problems = problems_of(folder)
    assert [(p.file, p.object, p.field) for p in problems] == [
        ("entities.json", "entities[0] (owner)", "load_type"),
        ("entities.json", "entities[0] (owner)", "quality.row_count.min"),
    ]
    assert problems[0].message == ("key 'load_type' appears twice in the same object (first \"full\", "
                                   "then \"delta\"); keep one")
    assert problems[1].message.startswith("key 'min' appears twice in the same object (first 1, then 5)")


def test_a_key_given_twice_at_the_top_of_a_file(folder: Path) -> None:
    (folder / "actions.json").write_text('{"actions": [], "actions": []}')
    [problem] = problems_of(folder)
    assert (problem.file, problem.object, problem.field) == ("actions.json", "(file)", "actions")
    assert "key 'actions' appears twice" in problem.message


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused_where_they_stand(folder: Path, constant: str) -> None:
    replace_once(folder / "entities.json", '"max_percent": 125', f'"max_percent": {constant}')
    [problem] = problems_of(folder)
    assert (problem.file, problem.object, problem.field) == (
        "entities.json", "entities[0] (owner)", "quality.row_count_vs_previous_batch.max_percent")
    assert problem.message == f"{constant} is not a JSON number; write a finite number"


def test_the_words_nan_and_infinity_inside_strings_are_text(folder: Path) -> None:
    replace_once(folder / "entities.json", '"A registered vehicle owner with their address."',
                 '"NaN, Infinity and a \\"quoted\\" word"')
    catalog = load_catalog(folder, secrets=EnvSecretStore(env_file=folder / "absent.env"))
    assert catalog.entities["owner"].description == 'NaN, Infinity and a "quoted" word'


def test_bytes_that_are_not_utf8_are_named_by_offset_object_and_field(folder: Path) -> None:
    path = folder / "entities.json"
    data = path.read_bytes()
    at = data.index(b"A registered vehicle and its current owner.")
    path.write_bytes(data[:at] + b"\xe9" + data[at:])  # latin-1 'é', as an editor set to latin-1 writes it
    [problem] = problems_of(folder)
    line = data[:at].count(b"\n") + 1
    assert (problem.file, problem.object, problem.field) == ("entities.json", "entities[1] (vehicle)", "description")
    assert problem.message == (f"not valid UTF-8 at byte offset {at} (line {line}, byte 0xe9); "
                               "save the file as UTF-8")


def test_bytes_that_are_not_utf8_outside_a_string_are_named_by_offset(folder: Path) -> None:
    (folder / "actions.json").write_bytes(b'{"actions":\n \xff[]}')
    [problem] = problems_of(folder)
    assert (problem.file, problem.object, problem.field) == ("actions.json", "(file)", "-")
    assert problem.message == "not valid UTF-8 at byte offset 13 (line 2, byte 0xff); save the file as UTF-8"


def test_every_file_is_checked_before_any_fails(folder: Path) -> None:
    (folder / "actions.json").write_bytes(b'{"actions": [], "actions": []}')
    replace_once(folder / "systems.json", '"id":', '"id": "XXX00", "id":')
    problems = problems_of(folder)
    assert {(p.file, p.field) for p in problems} == {("systems.json", "id"), ("actions.json", "actions")}
    assert str(next(p for p in problems if p.file == "systems.json")).startswith(
        "systems.json: systems[0] (TST01): field 'id': key 'id' appears twice")
