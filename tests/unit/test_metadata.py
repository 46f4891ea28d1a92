"""Unit tests of metadata/: loading the declarations, every validation problem, secrets and naming.

Long on purpose: one test per validation rule, kept in one file so that the rules read as a list.

Each invalid case mutates a private copy of the bundled declarations and asserts the exact file,
object and field of the problem it causes (and the key part of its message).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from metadata.catalog import DEFAULT_FOLDER, MetadataError, Problem, load_catalog
from metadata.columns import Column
from metadata.models import CopyPattern
from metadata.naming import (
    MAX_IDENTIFIER_BYTES,
    dbt_model_name,
    entity_table,
    identifier_problem,
    landing_table,
    to_identifier,
)
from secret_store.base import MissingSecretError, resolve_secrets, secret_keys
from secret_store.env import EnvSecretStore

SECRET_VALUE = "s3cr3t-Value-4711"  # must never show up in an error
TOKEN_REF = {"type": "secret", "key": "tst01/token"}
TOKEN_VARIABLE = "DATAPLATFORM_SECRET_TST01_TOKEN"

Mutation = Callable[[dict[str, Any]], None]


# --------------------------------------------------------------------------------------------- helpers


def edit(folder: Path, file: str, mutate: Callable[[Any], None]) -> None:
    path = folder / file
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data, indent=2))


def entity(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in data["entities"] if e["name"] == name)


def system(data: dict[str, Any]) -> dict[str, Any]:
    return data["systems"][0]


def problems_of(folder: Path, store: EnvSecretStore) -> list[Problem]:
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    return excinfo.value.problems


def find(problems: list[Problem], file: str, obj: str, field: str) -> Problem:
    """The one problem at (file, object, field); fails listing all problems when there is none."""
    matches = [p for p in problems if (p.file, p.object, p.field) == (file, obj, field)]
    assert len(matches) == 1, f"expected one problem at {(file, obj, field)}, got: {problems}"
    return matches[0]


def where(problems: list[Problem]) -> set[tuple[str, str, str]]:
    return {(p.file, p.object, p.field) for p in problems}


# ------------------------------------------------------------------------------------ bundled metadata


def test_bundled_declarations_load(store: EnvSecretStore) -> None:
    catalog = load_catalog(DEFAULT_FOLDER, secrets=store)

    assert list(catalog.systems) == ["TST01"]
    tst01 = catalog.systems["TST01"]
    assert tst01.type == "json_files"
    assert tst01.endpoints() == {"owners": "owners.json", "vehicles": "vehicles.json"}
    assert list(catalog.entities) == ["owner", "vehicle", "vehicle_option"]
    assert [e.name for e in catalog.entities_of("TST01")] == ["owner", "vehicle", "vehicle_option"]
    assert [(a.name, a.type, [(t.system, t.entity, t.layer) for t in a.triggers()]) for a in catalog.actions] == [
        ("refresh_gold", "dbt_build", [("TST01", None, "gold")]),
        ("owner_fleet_model", "python", [("TST01", None, "gold")]),
    ]
    assert catalog.actions[0].select == "gold"
    assert catalog.actions[1].class_ref == "actions.examples.owner_fleet_model:OwnerFleetModel"
    assert {n: (catalog.landing_table(e), catalog.table(e)) for n, e in catalog.entities.items()} == {
        "owner": ("tst01_owners", "tst01_owner"),
        "vehicle": ("tst01_vehicles", "tst01_vehicle"),
        "vehicle_option": ("tst01_vehicles", "tst01_vehicle_option"),
    }
    assert {n: m.__name__ for n, m in catalog.models.items()} == {
        "owner": "Owner",
        "vehicle": "Vehicle",
        "vehicle_option": "VehicleOption",
    }


def test_bundled_columns_of_owner(store: EnvSecretStore) -> None:
    catalog = load_catalog(DEFAULT_FOLDER, secrets=store)
    assert catalog.columns["owner"] == [
        Column("owner_id", "bigint", ("owner_id",), "record", True, 2, False),
        Column("name", "text", ("name",), "record", False, 2, False),
        Column("email", "text", ("email",), "record", False, 1, False),
        Column("address_street", "text", ("address", "street"), "record", False, 2, True),
        Column("address_city", "text", ("address", "city"), "record", False, 2, True),
        Column("address_postcode", "text", ("address", "postcode"), "record", False, 2, True),
    ]
    assert catalog.primary_key(catalog.entities["owner"]) == ["owner_id"]


def test_bundled_columns_of_vehicle(store: EnvSecretStore) -> None:
    catalog = load_catalog(DEFAULT_FOLDER, secrets=store)
    assert catalog.columns["vehicle"] == [
        Column("vehicle_id", "text", ("vehicle_id",), "record", True, 2, False),
        Column("vin", "text", ("vin",), "record", False, 2, False),
        Column("make", "text", ("make",), "record", False, 2, False),
        Column("model", "text", ("model",), "record", False, 2, False),
        Column("year", "bigint", ("year",), "record", False, 2, False),
        Column("color", "text", ("color",), "record", False, 2, False),
        Column("mileage_km", "bigint", ("mileage_km",), "record", False, 1, False),
        Column("owner_owner_id", "bigint", ("owner", "owner_id"), "record", False, 2, True),
        Column("owner_since", "date", ("owner", "since"), "record", False, 2, True),
    ]
    assert catalog.primary_key(catalog.entities["vehicle"]) == ["vehicle_id"]
    scd1 = [c.name for c in catalog.columns["vehicle"] if c.scd_type == 1]
    assert scd1 == ["mileage_km"]


def test_bundled_columns_of_vehicle_option(store: EnvSecretStore) -> None:
    catalog = load_catalog(DEFAULT_FOLDER, secrets=store)
    # The parent's key comes from the vehicle record, the rest from the list item.
    assert catalog.columns["vehicle_option"] == [
        Column("vehicle_id", "text", ("vehicle_id",), "record", True, 2, False),
        Column("code", "text", ("code",), "item", True, 2, False),
        Column("name", "text", ("name",), "item", False, 2, False),
        Column("price", "double precision", ("price",), "item", False, 2, False),
    ]
    assert catalog.primary_key(catalog.entities["vehicle_option"]) == ["vehicle_id", "code"]
    assert catalog.columns["vehicle_option"][0].as_dict() == {
        "name": "vehicle_id",
        "type": "text",
        "path": ["vehicle_id"],
        "source": "record",
        "primary_key": True,
        "scd_type": 2,
    }


def test_metadata_dir_from_environment(folder: Path, store: EnvSecretStore, monkeypatch: pytest.MonkeyPatch) -> None:
    edit(folder, "actions.json", lambda d: d.update(actions=[]))
    monkeypatch.setenv("DATAPLATFORM_METADATA_DIR", str(folder))
    catalog = load_catalog(secrets=store)
    assert catalog.folder == folder
    assert catalog.actions == []


# ------------------------------------------------------------------------------------ invalid metadata


def test_unknown_system_id_in_entity(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(system_id="XYZ99"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity owner", "system_id")
    assert "unknown system 'XYZ99'" in p.message
    assert "declare it in systems.json" in p.message
    assert len(problems) == 1


@pytest.mark.parametrize("bad_id", ["TST1", "tst01", "TST001", "T5T01", "TS_01"])
def test_system_id_must_be_three_letters_and_two_digits(folder: Path, store: EnvSecretStore, bad_id: str) -> None:
    edit(folder, "systems.json", lambda d: system(d).update(id=bad_id))
    problems = problems_of(folder, store)
    p = find(problems, "systems.json", f"systems[0] ({bad_id})", "id")
    assert "^[A-Z]{3}[0-9]{2}$" in p.message
    assert repr(bad_id) in p.message
    assert len(problems) == 1


def test_system_id_of_entity_must_match_pattern(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "vehicle").update(system_id="tst01"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entities[1] (vehicle)", "system_id")
    assert "^[A-Z]{3}[0-9]{2}$" in p.message


def test_landing_entity_must_be_an_endpoint_of_the_system(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(landing_entity="drivers"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity owner", "landing_entity")
    assert "'drivers' is not an endpoint of TST01 (has: owners, vehicles)" in p.message
    assert len(problems) == 1


def test_unknown_system_type(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "systems.json", lambda d: system(d).update(type="ftp"))
    problems = problems_of(folder, store)
    p = find(problems, "systems.json", "system TST01", "type")
    assert "unknown system type 'ftp'" in p.message
    assert "known types: files, json_files, mongodb, rest_api, sql_database" in p.message
    assert len(problems) == 1


def test_invalid_connection_names_the_connection_field(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "systems.json", lambda d: system(d)["connection"].pop("path"))
    problems = problems_of(folder, store)
    p = find(problems, "systems.json", "system TST01", "connection.path")
    assert p.message == "Field required"
    assert len(problems) == 1


def test_unknown_key_in_entity_is_a_typo(folder: Path, store: EnvSecretStore) -> None:
    def typo(d: dict[str, Any]) -> None:
        e = entity(d, "vehicle")
        e["load_typ"] = e.pop("load_type")

    edit(folder, "entities.json", typo)
    problems = problems_of(folder, store)
    extra = find(problems, "entities.json", "entities[1] (vehicle)", "load_typ")
    assert "Extra inputs are not permitted" in extra.message
    missing = find(problems, "entities.json", "entities[1] (vehicle)", "load_type")
    assert missing.message == "Field required"
    assert len(problems) == 2


def test_unknown_key_in_system_and_action(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "systems.json", lambda d: system(d).update(descripton="typo"))
    edit(folder, "actions.json", lambda d: d["actions"][0].update(selector="gold"))
    problems = problems_of(folder, store)
    not_permitted = "Extra inputs are not permitted"
    assert not_permitted in find(problems, "systems.json", "systems[0] (TST01)", "descripton").message
    assert not_permitted in find(problems, "actions.json", "actions[0] (refresh_gold)", "selector").message
    assert len(problems) == 2


def test_unknown_bronze_pattern_type(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(bronze_pattern={"type": "nest"}))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entities[0] (owner)", "bronze_pattern")
    assert "'nest'" in p.message
    assert "'copy', 'flatten', 'explode'" in p.message


def test_invalid_json_names_file_and_line(folder: Path, store: EnvSecretStore) -> None:
    (folder / "entities.json").write_text('{\n  "entities": [\n    {"name": "owner",}\n  ]\n}\n')
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "(file)", "-")
    assert p.message.startswith("not valid JSON at line 3, column 22:")
    assert len(problems) == 1


def test_missing_declaration_file(folder: Path, store: EnvSecretStore) -> None:
    (folder / "actions.json").unlink()
    problems = problems_of(folder, store)
    p = find(problems, "actions.json", "(file)", "-")
    assert p.message == f"file not found at {folder / 'actions.json'}; create it"


def test_missing_secret_is_reported_then_found_in_environment(
    folder: Path, store: EnvSecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(folder, "systems.json", lambda d: system(d)["connection"].update(path=TOKEN_REF))
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)

    problems = problems_of(folder, store)
    p = find(problems, "systems.json", "system TST01", "connection")
    assert "secret 'tst01/token' is missing" in p.message
    assert f"set the environment variable {TOKEN_VARIABLE}" in p.message
    assert len(problems) == 1

    monkeypatch.setenv(TOKEN_VARIABLE, SECRET_VALUE)
    catalog = load_catalog(folder, secrets=store)
    # Loading checks that the secret exists; it is resolved only when a connector needs it.
    assert catalog.systems["TST01"].connection["path"] == TOKEN_REF
    assert resolve_secrets(catalog.systems["TST01"].connection, store)["path"] == SECRET_VALUE


def test_missing_secret_found_in_env_file(folder: Path, tmp_path: Path) -> None:
    edit(folder, "systems.json", lambda d: system(d)["connection"].update(path=TOKEN_REF))
    env_file = tmp_path / "local.env"
    env_file.write_text(f"# local secrets\n{TOKEN_VARIABLE}={SECRET_VALUE}\n")
    catalog = load_catalog(folder, secrets=EnvSecretStore(env_file=env_file))
    assert catalog.systems["TST01"].connection["path"] == TOKEN_REF


def test_secret_value_never_appears_in_errors(
    folder: Path, store: EnvSecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, SECRET_VALUE)

    def break_connection(d: dict[str, Any]) -> None:
        connection = system(d)["connection"]
        connection["path"] = TOKEN_REF
        connection["token"] = TOKEN_REF  # a field the json_files connection does not know
        connection["endpoints"] = {"owners": TOKEN_REF, "vehicles": "vehicles.json"}

    edit(folder, "systems.json", break_connection)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(landing_entity="drivers"))
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    problems = excinfo.value.problems
    not_permitted = "Extra inputs are not permitted"
    assert not_permitted in find(problems, "systems.json", "system TST01", "connection.token").message
    assert find(problems, "systems.json", "system TST01", "connection.endpoints.owners").message == (
        "Input should be a valid string"
    )
    find(problems, "entities.json", "entity owner", "landing_entity")
    assert len(problems) == 3  # the secret is set: no "missing" problem
    assert SECRET_VALUE not in str(excinfo.value)
    assert SECRET_VALUE not in repr(problems)


def test_entity_name_too_long_for_a_table(folder: Path, store: EnvSecretStore) -> None:
    name = "owner_" + "x" * 52  # "tst01_" + 58 characters = 64 bytes
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(name=name))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", f"entity {name}", "name")
    assert p.message == f"table name maps to 'tst01_{name}', 64 bytes long; PostgreSQL allows 63"
    assert len(problems) == 1


def test_entity_name_of_exactly_63_bytes_is_fine(folder: Path, store: EnvSecretStore) -> None:
    name = "owner_" + "x" * 51
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(name=name))
    catalog = load_catalog(folder, secrets=store)
    assert len(catalog.table(catalog.entities[name]).encode()) == MAX_IDENTIFIER_BYTES


def test_endpoint_name_too_long_for_a_landing_table(folder: Path, store: EnvSecretStore) -> None:
    endpoint = "e" * 58
    edit(folder, "systems.json", lambda d: system(d)["connection"]["endpoints"].update({endpoint: "e.json"}))
    problems = problems_of(folder, store)
    p = find(problems, "systems.json", "system TST01", f"connection.endpoints.{endpoint}")
    assert p.message == f"landing table name maps to 'tst01_{endpoint}', 64 bytes long; PostgreSQL allows 63"


def test_two_entities_mapping_to_the_same_table(folder: Path, store: EnvSecretStore) -> None:
    # Names and system ids are restricted to lower-case identifiers and [A-Z]{3}[0-9]{2}, so two
    # entities map to the same table exactly when they share a name: that is what gets reported.
    edit(folder, "entities.json", lambda d: d["entities"].append(dict(entity(d, "owner"), description="again")))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity owner", "name")
    assert p.message == "declared more than once; names must be unique"
    assert len(problems) == 1


def test_duplicate_system_and_action(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "systems.json", lambda d: d["systems"].append(dict(system(d))))
    edit(folder, "actions.json", lambda d: d["actions"].append(dict(d["actions"][0])))
    problems = problems_of(folder, store)
    assert "declared more than once" in find(problems, "systems.json", "system TST01", "id").message
    assert "declared more than once" in find(problems, "actions.json", "action refresh_gold", "name").message
    assert len(problems) == 2


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("metadata.entity_models.nope:Owner", "No module named 'metadata.entity_models.nope'"),
        ("metadata.entity_models.tst01:Nope", "module 'metadata.entity_models.tst01' has no attribute 'Nope'"),
        ("metadata.entity_models.tst01:dt", "metadata.entity_models.tst01:dt is not a Pydantic model class"),
        ("no_such_package.models:Owner", "No module named 'no_such_package'"),
    ],
)
def test_entity_model_that_cannot_be_imported(folder: Path, store: EnvSecretStore, ref: str, expected: str) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=ref))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity owner", "model")
    assert p.message == f"cannot load {ref!r}: {expected}"
    assert len(problems) == 1


def test_entity_model_module_that_fails_on_import(
    folder: Path, store: EnvSecretStore, model_module: Callable[[str, str], str]
) -> None:
    broken = model_module("broken_models", "class Owner(:\n    pass\n")
    raising = model_module("raising_models", "raise RuntimeError('no database at import time')\n")
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{broken}:Owner"))
    edit(folder, "entities.json", lambda d: entity(d, "vehicle").update(model=f"{raising}:Vehicle"))
    problems = problems_of(folder, store)
    assert "invalid syntax" in find(problems, "entities.json", "entity owner", "model").message
    assert find(problems, "entities.json", "entity vehicle", "model").message == (
        f"cannot load '{raising}:Vehicle': no database at import time"
    )
    assert len(problems) == 2


COLLISION_MODELS = """
    from pydantic import BaseModel, Field

    from metadata.entity_model import EntityModel, Key


    class OwnerRef(BaseModel):
        id: int


    class NestedClash(EntityModel):
        owner_id: Key[int]
        owner: OwnerRef              # flattened to owner_id as well


    class AliasClash(EntityModel):
        owner_id: Key[int]
        owner_ref: int = Field(alias="Owner-ID")   # maps to owner_id


    class Node(BaseModel):
        value: int
        child: "Node | None" = None


    class SelfNesting(EntityModel):
        owner_id: Key[int]
        tree: Node


    class NoKey(EntityModel):
        owner_id: int


    class BadType(EntityModel):
        owner_id: Key[int]
        tags: set[str]


    class DigitColumn(EntityModel):
        owner_id: Key[int]
        first: int = Field(alias="1st")
"""


def test_nested_and_top_level_attributes_collide(
    folder: Path, store: EnvSecretStore, model_module: Callable[[str, str], str]
) -> None:
    module = model_module("collision_models", COLLISION_MODELS)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:NestedClash"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity owner", "model")
    assert p.message == "two attributes map to the column 'owner_id'; rename one"
    assert len(problems) == 1


def test_no_collision_when_the_nested_object_stays_one_column(
    folder: Path, store: EnvSecretStore, model_module: Callable[[str, str], str]
) -> None:
    module = model_module("collision_models", COLLISION_MODELS)
    edit(folder, "entities.json",
         lambda d: entity(d, "owner").update(model=f"{module}:NestedClash", bronze_pattern={"type": "copy"}))
    catalog = load_catalog(folder, secrets=store)
    assert isinstance(catalog.entities["owner"].bronze_pattern, CopyPattern)
    assert catalog.columns["owner"] == [
        Column("owner_id", "bigint", ("owner_id",), "record", True, 2, False),
        Column("owner", "jsonb", ("owner",), "record", False, 2, False),
    ]


@pytest.mark.parametrize(
    ("model", "field", "message"),
    [
        ("AliasClash", "model", "two attributes map to the column 'owner_id'; rename one"),
        ("SelfNesting", "model", "{module}:SelfNesting: field 'tree.child' nests Node inside itself"),
        ("NoKey", "model", "{module}:NoKey declares no primary key; mark one field Key[...]"),
        ("BadType", "model", "{module}:BadType: field 'tags' has type set[str], which has no PostgreSQL mapping"),
        ("DigitColumn", "model.1st", "column name maps to '1st', which starts with a digit"),
    ],
)
def test_entity_models_the_platform_cannot_map(
    folder: Path,
    store: EnvSecretStore,
    model_module: Callable[[str, str], str],
    model: str,
    field: str,
    message: str,
) -> None:
    module = model_module("collision_models", COLLISION_MODELS)
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(model=f"{module}:{model}"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity owner", field)
    assert message.format(module=module) in p.message
    assert len(problems) == 1


def test_explode_with_unknown_parent_entity(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option")["bronze_pattern"].update(parent_entity="truck"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity vehicle_option", "bronze_pattern.parent_entity")
    assert p.message == "'truck' must be an entity of the same system and landing entity"
    assert len(problems) == 1


def test_explode_with_parent_of_another_landing_entity(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option")["bronze_pattern"].update(parent_entity="owner"))
    problems = problems_of(folder, store)
    p = find(problems, "entities.json", "entity vehicle_option", "bronze_pattern.parent_entity")
    assert p.message == "'owner' must be an entity of the same system and landing entity"


def test_action_after_unknown_system(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "actions.json", lambda d: d["actions"][0].update(after_systems=["TST01", "XYZ99"]))
    problems = problems_of(folder, store)
    p = find(problems, "actions.json", "action refresh_gold", "after_systems")
    assert p.message == "unknown system 'XYZ99'"
    assert len(problems) == 1


def test_several_declaration_problems_are_all_reported(folder: Path, store: EnvSecretStore) -> None:
    """All three files are parsed before failing: one problem per file here."""
    edit(folder, "systems.json", lambda d: system(d).update(id="TST1"))
    edit(folder, "entities.json", lambda d: entity(d, "vehicle").update(load_type="sometimes"))
    (folder / "actions.json").write_text('{"actions": [\n')
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    problems = excinfo.value.problems
    assert where(problems) == {
        ("systems.json", "systems[0] (TST1)", "id"),
        ("entities.json", "entities[1] (vehicle)", "load_type"),
        ("actions.json", "(file)", "-"),
    }
    assert len(problems) == 3
    assert str(excinfo.value).startswith("invalid metadata (3 problem(s)):\n")


def test_several_consistency_problems_are_all_reported(folder: Path, store: EnvSecretStore) -> None:
    edit(folder, "systems.json", lambda d: system(d)["connection"].update(path=TOKEN_REF))
    edit(folder, "entities.json", lambda d: entity(d, "owner").update(landing_entity="drivers"))
    edit(folder, "entities.json", lambda d: entity(d, "vehicle").update(model="metadata.entity_models.tst01:Nope"))
    edit(folder, "entities.json", lambda d: entity(d, "vehicle_option").update(system_id="XYZ99"))
    edit(folder, "actions.json", lambda d: d["actions"][0].update(after_systems=["ABC01"]))
    with pytest.raises(MetadataError) as excinfo:
        load_catalog(folder, secrets=store)
    problems = excinfo.value.problems
    assert where(problems) == {
        ("systems.json", "system TST01", "connection"),
        ("entities.json", "entity owner", "landing_entity"),
        ("entities.json", "entity vehicle", "model"),
        ("entities.json", "entity vehicle_option", "system_id"),
        ("actions.json", "action refresh_gold", "after_systems"),
    }
    assert len(problems) == 5
    text = str(excinfo.value)
    assert text.startswith("invalid metadata (5 problem(s)):\n")
    assert "  - actions.json: action refresh_gold: field 'after_systems': unknown system 'ABC01'" in text.splitlines()


def test_problem_text_names_file_object_and_field() -> None:
    p = Problem("entities.json", "entity owner", "system_id", "unknown system 'XYZ99'")
    assert str(p) == "entities.json: entity owner: field 'system_id': unknown system 'XYZ99'"


# --------------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("tst01/api_token", "DATAPLATFORM_SECRET_TST01_API_TOKEN"),
        ("tst01/token", "DATAPLATFORM_SECRET_TST01_TOKEN"),
        ("bank.api-key", "DATAPLATFORM_SECRET_BANK_API_KEY"),
        ("/vault//path/", "DATAPLATFORM_SECRET_VAULT_PATH"),
    ],
)
def test_secret_variable_names(key: str, variable: str) -> None:
    assert EnvSecretStore.variable(key) == variable


def test_env_secret_store_reads_env_file_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DATAPLATFORM_SECRET_TST01_API_TOKEN=from-file\n"
        "DATAPLATFORM_SECRET_TST01_PASSWORD='quoted value'\n"
    )
    store = EnvSecretStore(env_file=env_file)
    assert store.has("tst01/api_token")
    assert store.get("tst01/api_token") == "from-file"
    assert store.get("tst01/password") == "quoted value"

    monkeypatch.setenv("DATAPLATFORM_SECRET_TST01_API_TOKEN", "from-env")
    assert store.get("tst01/api_token") == "from-env"

    assert not store.has("tst01/other")
    with pytest.raises(MissingSecretError) as excinfo:
        store.get("tst01/other")
    assert "secret 'tst01/other' is not set" in str(excinfo.value)
    assert "DATAPLATFORM_SECRET_TST01_OTHER" in str(excinfo.value)
    assert store.describe("tst01/other") == (
        "set the environment variable DATAPLATFORM_SECRET_TST01_OTHER (or put it in .env)"
    )


def test_env_secret_store_default_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("DATAPLATFORM_SECRET_TST01_TOKEN=abc\n")
    monkeypatch.setenv("DATAPLATFORM_ENV_FILE", str(env_file))
    assert EnvSecretStore().get("tst01/token") == "abc"


def test_env_secret_store_without_file(tmp_path: Path) -> None:
    store = EnvSecretStore(env_file=tmp_path / "absent.env")
    assert not store.has("tst01/token")


def test_resolve_secrets_replaces_nested_references(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DATAPLATFORM_SECRET_TST01_API_TOKEN=t0ken\nDATAPLATFORM_SECRET_DB_PASSWORD=pw\n")
    store = EnvSecretStore(env_file=env_file)
    connection = {
        "url": "https://example.org",
        "headers": {"Authorization": {"type": "secret", "key": "tst01/api_token"}},
        "databases": [{"name": "main", "password": {"type": "secret", "key": "db/password"}}, 5],
        "retries": 3,
        "verify": True,
    }
    assert secret_keys(connection) == ["tst01/api_token", "db/password"]
    assert resolve_secrets(connection, store) == {
        "url": "https://example.org",
        "headers": {"Authorization": "t0ken"},
        "databases": [{"name": "main", "password": "pw"}, 5],
        "retries": 3,
        "verify": True,
    }
    # A copy: the metadata itself keeps the references.
    assert connection["headers"] == {"Authorization": {"type": "secret", "key": "tst01/api_token"}}


def test_resolve_secrets_fails_on_a_missing_secret(tmp_path: Path) -> None:
    store = EnvSecretStore(env_file=tmp_path / "absent.env")
    with pytest.raises(MissingSecretError):
        resolve_secrets({"a": [{"type": "secret", "key": "tst01/token"}]}, store)


def test_secret_keys_ignores_look_alikes() -> None:
    assert secret_keys({"type": "secret"}) == []  # no key: not a reference
    assert secret_keys({"type": "password", "key": "x"}) == []
    assert secret_keys("tst01/token") == []


# ---------------------------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("owner_id", "owner_id"),
        ("OwnerID", "ownerid"),
        ("Owner ID", "owner_id"),
        ("  Vehicle-Option  ", "vehicle_option"),
        ("a--b..c", "a_b_c"),
        ("TST01_owners", "tst01_owners"),
        ("Größe", "gr_e"),
    ],
)
def test_to_identifier(name: str, identifier: str) -> None:
    assert to_identifier(name) == identifier


def test_identifier_problem_limits_bytes_not_characters() -> None:
    assert identifier_problem("a" * 63) is None
    assert identifier_problem("a" * 64) == f"maps to {'a' * 64!r}, 64 bytes long; PostgreSQL allows 63"
    two_byte = "é" * 32  # 32 characters, 64 bytes
    assert len(two_byte) == 32
    assert identifier_problem(two_byte) == f"maps to {two_byte!r}, 64 bytes long; PostgreSQL allows 63"
    assert identifier_problem("é" * 31 + "a") is None  # 63 bytes


def test_identifier_problem_empty_and_digit() -> None:
    assert identifier_problem("") == "maps to an empty name"
    assert identifier_problem("_") == "maps to an empty name"
    assert identifier_problem(to_identifier("!!!")) == "maps to an empty name"
    assert identifier_problem("1st") == "maps to '1st', which starts with a digit"
    assert identifier_problem("owner_id") is None


def test_table_names() -> None:
    assert landing_table("TST01", "owners") == "tst01_owners"
    assert entity_table("TST01", "vehicle_option") == "tst01_vehicle_option"
    assert dbt_model_name("silver", "TST01", "vehicle") == "silver__tst01_vehicle"
