"""Metadata is not code: hostile declarations are refused by `validate` (naming file, object and field), or,
where metadata holds free text, written into the generated dbt files so that it stays text.

Each case edits a private copy of the bundled declarations (as tests/unit/test_metadata.py does) and
asserts the one problem it causes. The end-to-end half (a run with hostile text that validate accepts,
and a key called `user`) is tests/e2e/test_hostile_run.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from codegen.dbt_files import generate
from metadata.catalog import DEFAULT_FOLDER, MetadataError, Problem, load_catalog
from metadata.columns import RESERVED_COLUMNS, Column, json_path_literal
from metadata.naming import path_segment_problem
from secret_store.env import EnvSecretStore

# What someone who wants to run SQL or templates through metadata would try. Each must be refused
# wherever a name or a JSON key is expected.
HOSTILE = [
    "options}')) as x; copy (select current_user) to '/tmp/dp_pwned'; --",  # the issue's list_path
    'x"; drop table audit.cursor; --',  # the issue's alias
    "a'b",
    'a"b',
    "a;b",
    "a -- b",
    "a /* b */",
    "a*/b",
    "$$",
    "a$$b",
    "{{ run_query('select 1') }}",
    "{% do run_query('select 1') %}",
    "{# b #}",
    "a}}b",
    "a{b",
    "back\\slash",
    "pg_read_file('/etc/passwd')",
    "a\nb",
    "a\tb",
    "a\x00b",
    "trailing ",
    " leading",
    "two  spaces",
    "-leading-hyphen",
    "",
    "a,b",
    "a:b",
    "100%",
    "оwner",  # Cyrillic о: looks like "owner"
    "owner\u200b",  # zero-width space
    "ｏwner",  # fullwidth o
    "x" * 129,
]


def edit(folder: Path, file: str, mutate: Callable[[Any], None]) -> None:
    path = folder / file
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data, indent=2))


def entity(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in data["entities"] if e["name"] == name)


def only_problem(folder: Path, store: EnvSecretStore) -> Problem:
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    problems = excinfo.value.problems
    assert len(problems) == 1, problems
    return problems[0]


# ------------------------------------------------------------------------------------- the pattern itself


@pytest.mark.parametrize("key", HOSTILE, ids=repr)
def test_a_hostile_json_key_breaks_the_pattern(key: str) -> None:
    why = path_segment_problem(key)
    assert why is not None and why.startswith(repr(key))
    assert "only ASCII letters, digits and '_', in words joined by a single '-' or space" in why


@pytest.mark.parametrize("key", ["owner_id", "Owner-ID", "1st", "First Name", "camelCase", "x" * 128])
def test_ordinary_json_keys_fit_the_pattern(key: str) -> None:
    assert path_segment_problem(key) is None


# ---------------------------------------------------------------------------------- refused by validate


@pytest.mark.parametrize("segment", [k for k in HOSTILE if "." not in k], ids=repr)
def test_a_hostile_list_path_is_refused(folder: Path, store: EnvSecretStore, segment: str) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option")["bronze_pattern"].update(
        list_path=f"options.{segment}"))
    p = only_problem(folder, store)
    assert (p.file, p.object, p.field) == ("entities.json", "entities[2] (vehicle_option)", "bronze_pattern.list_path")
    assert f"path segment {segment!r} is not allowed" in p.message
    assert "separate segments with '.'" in p.message


def test_the_issue_s_list_path_is_refused_whole(folder: Path, store: EnvSecretStore) -> None:
    payload = "options}')) as x; copy (select current_user) to '/tmp/dp_pwned'; --"
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option")["bronze_pattern"].update(list_path=payload))
    p = only_problem(folder, store)
    assert p.field == "bronze_pattern.list_path"
    assert payload in p.message  # the value, shown so the engineer finds it


@pytest.mark.parametrize("alias", [k for k in HOSTILE if k], ids=repr)  # an empty alias means the field's name
def test_a_hostile_field_alias_is_refused(folder: Path, store: EnvSecretStore,
                                          model_module: Callable[[str, str], str], alias: str) -> None:
    module = model_module("hostile_alias", f"""
        from pydantic import Field

        from metadata.entity_model import EntityModel, Key


        class Owner(EntityModel):
            owner_id: Key[int]
            name: str = Field(alias={alias!r})
    """)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner"))
    p = only_problem(folder, store)
    assert (p.file, p.object, p.field) == ("entities.json", "entity owner", f"model.{alias}")
    assert p.message.startswith(f"field alias or name {alias!r} is not allowed")


def test_a_hostile_alias_inside_a_nested_model_is_refused(folder: Path, store: EnvSecretStore,
                                                         model_module: Callable[[str, str], str]) -> None:
    module = model_module("hostile_nested", """
        from pydantic import BaseModel, Field

        from metadata.entity_model import EntityModel, Key


        class Address(BaseModel):
            city: str = Field(alias="city') || pg_read_file('/etc/passwd') || ('")


        class Owner(EntityModel):
            owner_id: Key[int]
            address: Address
    """)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner"))
    p = only_problem(folder, store)
    assert p.field == "model.address.city') || pg_read_file('/etc/passwd') || ('"
    assert "is not allowed" in p.message


def test_a_field_name_in_another_alphabet_is_refused(folder: Path, store: EnvSecretStore,
                                                     model_module: Callable[[str, str], str]) -> None:
    # Python accepts the Cyrillic 'о' in an attribute name; the platform does not.
    module = model_module("lookalike", """
        from metadata.entity_model import EntityModel, Key


        class Owner(EntityModel):
            оwner_id: Key[int]
    """)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner"))
    p = only_problem(folder, store)
    assert (p.object, p.field) == ("entity owner", "model.оwner_id")


@pytest.mark.parametrize(
    ("file", "mutate", "obj", "field"),
    [
        ("entities.json", lambda v: lambda d: entity(d, "owner").update(name=v), "entities[0]", "name"),
        ("entities.json", lambda v: lambda d: entity(d, "owner").update(system_id=v), "entities[0] (owner)",
         "system_id"),
        ("entities.json", lambda v: lambda d: entity(d, "owner").update(landing_entity=v), "entities[0] (owner)",
         "landing_entity"),
        ("entities.json", lambda v: lambda d: entity(d, "owner").update(model=v), "entities[0] (owner)", "model"),
        ("entities.json", lambda v: lambda d: entity(d, "vehicle_option")["bronze_pattern"].update(parent_entity=v),
         "entities[2] (vehicle_option)", "bronze_pattern.parent_entity"),
        ("systems.json", lambda v: lambda d: d["systems"][0].update(id=v), "systems[0]", "id"),
        ("systems.json", lambda v: lambda d: d["systems"][0]["connection"]["endpoints"].update({v: "x.json"}),
         "system TST01", "connection.endpoints.{v}.[key]"),
        ("actions.json", lambda v: lambda d: d["actions"][0].update(name=v), "actions[0]", "name"),
    ],
    ids=["entity name", "system_id", "landing_entity", "model", "parent_entity", "system id", "endpoint name",
         "action name"],
)
@pytest.mark.parametrize("value", ["x'; drop table audit.cursor; --", 'x"y', "{{ 1 }}", "$$", "оwner", "owner\n"],
                         ids=repr)
def test_a_hostile_name_is_refused(folder: Path, store: EnvSecretStore, file: str,
                                   mutate: Callable[[str], Callable[[Any], None]], obj: str, field: str,
                                   value: str) -> None:
    edit(folder, file, mutate(value))
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    located = [p for p in excinfo.value.problems if p.file == file and p.field == field.format(v=value)]
    assert located, excinfo.value.problems
    assert any(p.object.startswith(obj) and repr(value) in p.message for p in located), located


# --------------------------------------------------------------------------------------- reserved names


@pytest.mark.parametrize("name", sorted(RESERVED_COLUMNS))
def test_the_platform_s_own_column_names_are_reserved(folder: Path, store: EnvSecretStore,
                                                      model_module: Callable[[str, str], str], name: str) -> None:
    module = model_module("reserved", f"""
        from pydantic import Field

        from metadata.entity_model import EntityModel, Key


        class Owner(EntityModel):
            owner_id: Key[int]
            taken: str = Field(alias={name!r})
    """)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner"))
    p = only_problem(folder, store)
    assert (p.file, p.object, p.field) == ("entities.json", "entity owner", f"model.{name}")
    assert f"{name!r}" in p.message and "reserved" in p.message


def test_reserved_names_are_the_platform_s_columns() -> None:
    assert RESERVED_COLUMNS >= {"_batch_id", "_batch_timestamp", "_run_id", "_loaded_at", "_record_no", "payload",
                                "valid_from", "valid_to", "_scd2_hash", "_opened_by_batch_id", "_closed_by_batch_id",
                                "_modified_by_batch_id", "_modified_by_run_id"}


def test_a_name_a_nested_object_maps_to_is_reserved_too(folder: Path, store: EnvSecretStore,
                                                        model_module: Callable[[str, str], str]) -> None:
    module = model_module("reserved_nested", """
        from pydantic import BaseModel

        from metadata.entity_model import EntityModel, Key


        class Valid(BaseModel):
            to: str


        class Owner(EntityModel):
            owner_id: Key[int]
            valid: Valid  # flattened to valid_to
    """)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner"))
    p = only_problem(folder, store)
    assert p.field == "model.valid.to"
    assert "'valid_to' is reserved" in p.message


CHILD_MODELS = """
    from metadata.entity_model import EntityModel, Key


    class KeylessOption(EntityModel):
        position: int
        name: str


    class KeyedOption(EntityModel):
        code: Key[str]
        position: int
"""


def test_position_is_reserved_where_the_platform_generates_it(folder: Path, store: EnvSecretStore,
                                                              model_module: Callable[[str, str], str]) -> None:
    module = model_module("child_models", CHILD_MODELS)
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option").update(model=f"{module}:KeylessOption"))
    p = only_problem(folder, store)
    assert (p.object, p.field) == ("entity vehicle_option", "model.position")
    assert "'position' is reserved here: the platform generates it for list items without a key" in p.message


def test_position_is_an_ordinary_name_where_items_have_a_key(folder: Path, store: EnvSecretStore,
                                                             model_module: Callable[[str, str], str]) -> None:
    module = model_module("child_models", CHILD_MODELS)
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option").update(model=f"{module}:KeyedOption"))
    catalog = load_catalog(folder, secrets=store)
    assert [c.name for c in catalog.columns["vehicle_option"]] == ["vehicle_id", "code", "position"]


def test_sql_keywords_are_ordinary_column_names(folder: Path, store: EnvSecretStore,
                                                model_module: Callable[[str, str], str]) -> None:
    # Quoted everywhere, so `user`, `order` and `select` work (tests/e2e/test_hostile_run.py runs them).
    module = model_module("keywords", """
        from pydantic import Field

        from metadata.entity_model import EntityModel, Key


        class Owner(EntityModel):
            user: Key[int]
            order: str
            select: str = Field(alias="Select")
    """)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner"))
    catalog = load_catalog(folder, secrets=store)
    assert [c.name for c in catalog.columns["owner"]] == ["user", "order", "select"]


# --------------------------------------------------------------------- free text stays text in dbt's files

FREE_TEXT = [
    "'; create table public.dp_pwned (x int); --",
    "{{ env_var('DATAPLATFORM_PG_PASSWORD') }}",
    "{% do run_query('create table public.dp_pwned (x int)') %}",
    "{# hidden #} $$ */ \\ \" }} {%",
    "{{ '{' }}",
    "ünïcødé ✓ 車 😀",
]


def _render(text: str, **context: Any) -> str:
    """Jinja as dbt renders descriptions and models (dbt's own environment adds macros, not syntax)."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(**context)


def test_descriptions_render_as_declared(folder: Path, store: EnvSecretStore, tmp_path: Path,
                                         model_module: Callable[[str, str], str]) -> None:
    module = model_module("described", f"""
        from pydantic import Field

        from metadata.entity_model import EntityModel, Key


        class Owner(EntityModel):
            owner_id: Key[int] = Field(description={FREE_TEXT[2]!r})
            name: str = Field(description={" ".join(FREE_TEXT)!r})
    """)
    text = " | ".join(FREE_TEXT)
    edit(folder, "systems.json", lambda d: d["systems"][0].update(name=FREE_TEXT[1], description=text))
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:Owner", description=text))
    catalog = load_catalog(folder, secrets=store)  # free text is accepted: it is stored literally
    generate(catalog, project_dir=tmp_path / "dbt")

    properties = yaml.safe_load((tmp_path / "dbt/models/silver/generated/silver__tst01_owner.yml").read_text())
    model = properties["models"][0]
    assert _render(model["description"]).startswith(f"{text} Silver: SCD2 history")
    columns = {c["name"]: _render(c["description"]) for c in model["columns"]}
    assert columns["owner_id"] == FREE_TEXT[2]
    assert columns["name"] == " ".join(FREE_TEXT)
    sources = yaml.safe_load((tmp_path / "dbt/models/landing/generated/__sources.yml").read_text())
    assert _render(sources["sources"][0]["tables"][0]["description"]).startswith(
        f"What system TST01, {FREE_TEXT[1]}, returned")


class _Recorder:
    """Stands in for dbt's macros while rendering a generated model: records the arguments they get."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def __getattr__(self, name: str) -> Callable[..., str]:
        def record(*args: Any, **kwargs: Any) -> str:
            self.calls[name] = (args, kwargs)
            return ""
        return record


def test_values_that_bypassed_validate_still_reach_the_macros_unchanged(store: EnvSecretStore,
                                                                        tmp_path: Path) -> None:
    """A second line behind validate: whatever a column's name or path holds, the generated model hands
    it to the macros as data (a JSON-escaped Jinja literal), so nothing in it can end the `{{ ... }}`."""
    catalog = load_catalog(DEFAULT_FOLDER, secrets=store)
    hostile_path = ("a}}b", "{% c %}", "d\"'\\", "$$;--", "😀\n")
    catalog.columns["vehicle_option"] = [
        Column("x\"}} {{ y", "text", hostile_path, "item", True, 2, False),
        Column("vehicle_id", "text", ("vehicle_id",), "record", True, 2, False),
    ]
    option = catalog.entities["vehicle_option"]
    option.bronze_pattern.list_path = "opt}}ions.{% x %}"  # type: ignore[union-attr]
    generate(catalog, project_dir=tmp_path / "dbt")

    bronze = _Recorder()
    _render((tmp_path / "dbt/models/bronze/generated/bronze__tst01_vehicle_option.sql").read_text(),
            config=bronze.config, source=bronze.source, bronze_entity=bronze.bronze_entity)
    _, kwargs = bronze.calls["bronze_entity"]
    assert kwargs["columns"] == [c.macro_args() for c in catalog.columns["vehicle_option"]]
    assert kwargs["columns"][0]["path_sql"] == json_path_literal(hostile_path)
    assert kwargs["list_path_sql"] == json_path_literal(("opt}}ions", "{% x %}"))

    silver = _Recorder()
    _render((tmp_path / "dbt/models/silver/generated/silver__tst01_vehicle_option.sql").read_text(),
            config=silver.config, ref=silver.ref, silver_stage=silver.silver_stage)
    assert silver.calls["config"][1]["primary_key"] == ["x\"}} {{ y", "vehicle_id"]
    assert silver.calls["silver_stage"][1]["columns"] == ["x\"}} {{ y", "vehicle_id"]
