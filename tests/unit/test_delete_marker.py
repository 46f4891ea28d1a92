"""Unit tests of deletes in records (an entity's `deleted_when`): its validation in entities.json (file,
object, field), the generated bronze and silver models that carry it, the one SQL test of "this record
is a delete" and the quality gate's exemption of delete records from required attributes, both run on
the machine's PostgreSQL (127.0.0.1:5432), and the presence verdict that leaves delete records out."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from codegen.dbt_files import generate
from metadata.catalog import Catalog, MetadataError, load_catalog
from metadata.deletes import marker_sql
from metadata.models import DeleteMarker
from quality.plan import (
    PRESENCE_EXPECTATION,
    ROWS,
    EntityPlan,
    PlannedExpectation,
    kind_column_names,
    plan_entity,
    rows_query,
)
from quality.report import verdict
from secret_store.env import EnvSecretStore

SERVER = os.environ.get("DATAPLATFORM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def with_marker(folder: Path, entity: str, marker: Any, **changes: Any) -> Path:
    data = json.loads((folder / "entities.json").read_text())
    for e in data["entities"]:
        if e["name"] == entity:
            e.update(deleted_when=marker, **changes)
    (folder / "entities.json").write_text(json.dumps(data))
    return folder


def problems(folder: Path, store: EnvSecretStore) -> list[str]:
    with pytest.raises(MetadataError) as err:
        load_catalog(folder, secrets=store)
    return [str(p) for p in err.value.problems]


# ------------------------------------------------------------------------------------------------ metadata


def test_a_marker_is_accepted_on_delta_and_full_entities(folder: Path, store: EnvSecretStore) -> None:
    with_marker(folder, "owner", {"field": "op", "equals": "d"}, load_type="delta")
    with_marker(folder, "vehicle", {"field": "meta.is_deleted", "one_of": [True, 1]})
    catalog = load_catalog(folder, secrets=store)
    assert catalog.entities["owner"].deleted_when == DeleteMarker(field="op", equals="d")
    assert catalog.entities["vehicle"].deleted_when.values() == [True, 1]  # type: ignore[union-attr]
    assert catalog.entities["vehicle_option"].deleted_when is None
    # The field a marker reads is the platform's to read: landing does not report it as a new source field.
    assert "op" in catalog.modelled_fields("TST01", "owners")
    assert "meta" in catalog.modelled_fields("TST01", "vehicles")
    assert "op" not in catalog.modelled_fields("TST01", "vehicles")


@pytest.mark.parametrize("marker, field, message", [
    ({"field": "op", "equals": "d", "one_of": ["D"]}, "deleted_when",
     "give exactly one of 'equals' (one value) and 'one_of' (a list of values)"),
    ({"field": "op"}, "deleted_when", "give exactly one of 'equals' (one value) and 'one_of'"),
    ({"field": "op", "one_of": []}, "deleted_when.one_of", "at least 1 item"),
    ({"field": "op", "equals": {"a": 1}}, "deleted_when.equals", "must be a JSON string, number or boolean, not an"
     " object"),
    ({"field": "op", "one_of": ["d", None]}, "deleted_when.one_of.1", "must be a JSON string, number or boolean, not"
     " null"),
    ({"field": "a..b", "equals": "d"}, "deleted_when.field", "path segment"),
    ({"field": "op", "equal": "d"}, "deleted_when.equal", "Extra inputs are not permitted"),
])
def test_a_bad_marker_names_file_object_and_field(folder: Path, store: EnvSecretStore, marker: dict[str, Any],
                                                  field: str, message: str) -> None:
    found = problems(with_marker(folder, "owner", marker), store)
    assert any(p.startswith(f"entities.json: entities[0] (owner): field '{field}'") and message in p
               for p in found), found


def test_a_marker_on_an_explode_entity_is_refused(folder: Path, store: EnvSecretStore) -> None:
    found = problems(with_marker(folder, "vehicle_option", {"field": "op", "equals": "d"}), store)
    assert found == ["entities.json: entity vehicle_option: field 'deleted_when': not supported on an explode "
                     "entity: a delete record carries its parent's key, not the items' (a CDC delete has no list); "
                     "declare it on the parent entity 'vehicle'"]


def test_a_marker_value_that_can_never_match_its_modelled_field_is_refused(folder: Path,
                                                                          store: EnvSecretStore) -> None:
    with_marker(folder, "owner", {"field": "name", "equals": True})  # name: str
    with_marker(folder, "vehicle", {"field": "owner.since", "equals": "2026-01-01"})  # a date
    assert problems(folder, store) == [
        "entities.json: entity owner: field 'deleted_when.equals': true can never match field 'name', declared "
        "text in the entity model (accepts string); write the value as the source sends it",
        "entities.json: entity vehicle: field 'deleted_when.field': field 'owner.since' is declared date in the "
        "entity model; a delete marker compares JSON values, so mark deletes with a str, int, float, Decimal or "
        "bool field",
    ]


# ------------------------------------------------------------------------------------------ generated dbt files


def test_generated_models_carry_the_marker_only_where_declared(folder: Path, store: EnvSecretStore,
                                                               tmp_path: Path) -> None:
    with_marker(folder, "owner", {"field": "op", "equals": "d"}, load_type="delta")
    catalog = load_catalog(folder, secrets=store)
    project = tmp_path / "dbt"
    generate(catalog, project_dir=project)
    bronze = (project / "models/bronze/generated/bronze__tst01_owner.sql").read_text()
    assert 'deleted_sql="coalesce(({record} #> \'{\\"op\\"}\') in (cast(\'\\"d\\"\' as jsonb)), false)",' in bronze
    assert "deletes=true" in (project / "models/silver/generated/silver__tst01_owner.sql").read_text()
    described = yaml.safe_load((project / "models/silver/generated/silver__tst01_owner.yml").read_text())
    assert described["models"][0]["description"].endswith(
        'A record whose op is "d" is a delete: it closes its key\'s current version.')
    yml = (project / "models/bronze/generated/bronze__tst01_owner.yml").read_text()
    assert "- name: _deleted" in yml and "data_type: boolean" in yml
    for name in ("bronze__tst01_vehicle.sql", "bronze__tst01_vehicle_option.sql"):
        assert "deleted_sql" not in (project / "models/bronze/generated" / name).read_text()
    assert "deletes" not in (project / "models/silver/generated/silver__tst01_vehicle.sql").read_text()


# ------------------------------------------------------------------------------- SQL, on a real PostgreSQL


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A database of this module's own on the machine's PostgreSQL, dropped at the end."""
    name = f"delete_marker_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as err:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no PostgreSQL answers at {SERVER} ({err}); start one or set DATAPLATFORM_TEST_PG_URL")
    with admin:
        admin.execute(f"create database {name}")
        try:
            yield SERVER.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f"drop database {name} with (force)")


@pytest.mark.parametrize("marker, record, deleted", [
    ({"field": "op", "equals": "d"}, {"op": "d", "id": 1}, True),
    ({"field": "op", "equals": "d"}, {"op": "D"}, False),
    ({"field": "op", "equals": "d"}, {"op": None}, False),
    ({"field": "op", "equals": "d"}, {}, False),
    ({"field": "op", "one_of": ["d", "D"]}, {"op": "D"}, True),
    ({"field": "is_deleted", "equals": True}, {"is_deleted": True}, True),
    ({"field": "is_deleted", "equals": True}, {"is_deleted": "true"}, False),  # text is not a boolean
    ({"field": "is_deleted", "equals": "true"}, {"is_deleted": "true"}, True),  # as a CSV delivers it
    ({"field": "flag", "equals": 1}, {"flag": 1.0}, True),  # a number by its value
    ({"field": "flag", "equals": 1}, {"flag": "1"}, False),
    ({"field": "meta.op", "equals": "it's"}, {"meta": {"op": "it's"}}, True),
    ({"field": "meta.op", "equals": "d"}, {"meta": "d"}, False),
])
def test_marker_sql_matches_json_values(server: str, marker: dict[str, Any], record: dict[str, Any],
                                        deleted: bool) -> None:
    query = f"select {marker_sql(DeleteMarker(**marker), 'r')} from (select %s::jsonb as r) as t"
    with psycopg.connect(server) as conn:
        assert conn.execute(query, (json.dumps(record),)).fetchone() == (deleted,)


@pytest.fixture
def cdc(folder: Path, store: EnvSecretStore) -> Catalog:
    """TST01's owner as a delta entity of CDC records (`op`: c, u or d)."""
    return load_catalog(with_marker(folder, "owner", {"field": "op", "equals": "d"}, load_type="delta"),
                        secrets=store)


ANN = {"op": "c", "owner_id": 1, "name": "Ann", "email": "a@x", "address": {"street": "S", "city": "Oslo",
                                                                            "postcode": "1"}}


def land(server: str, catalog: Catalog, batches: dict[int, list[dict[str, Any]]]) -> None:
    """The batches' records in the entity's landing table (the columns the gate reads)."""
    table = catalog.landing_table(catalog.entities["owner"])
    with psycopg.connect(server) as conn:
        conn.execute("create schema if not exists landing")
        conn.execute(f"drop table if exists landing.{table}")
        conn.execute(f"create table landing.{table} (_batch_id bigint, _record_no bigint, payload jsonb)")
        for batch_id, records in batches.items():
            for no, record in enumerate(records, 1):
                conn.execute(f"insert into landing.{table} values (%s, %s, %s)", (batch_id, no, json.dumps(record)))


def test_the_gate_query_gives_a_delete_records_absent_attributes_no_kind(server: str, cdc: Catalog) -> None:
    entity = cdc.entities["owner"]
    land(server, cdc, {9: [
        ANN,
        {"op": "d", "owner_id": 2},  # a CDC delete: the key only
        {"op": "d", "owner_id": 3, "name": None, "email": 7},  # a null, and a value of the wrong type
        {"op": "u", "owner_id": 4},  # not a delete: its required attributes are missing
        {"op": "d"},  # a delete without its key
    ]})
    with psycopg.connect(server) as conn:
        cur = conn.cursor(row_factory=dict_row)
        rows = cur.execute(rows_query(cdc, entity, 9) + " order by _record_no").fetchall()
    kinds = kind_column_names(cdc.columns["owner"])
    kind = {c: [r[kinds[c]] for r in rows] for c in ("owner_id", "name", "email", "address_city")}
    assert kind == {
        "owner_id": ["integer", "integer", "integer", "integer", "missing"],  # the key: every record
        "name": ["string", None, None, "missing", None],
        "email": ["string", None, "integer", "missing", None],  # a carried value keeps its kind: checked
        "address_city": ["string", None, None, "missing", None],
    }


def test_great_expectations_lets_delete_records_without_required_attributes_through(server: str,
                                                                                     cdc: Catalog) -> None:
    from quality.gx import GxValidator

    land(server, cdc, {
        9: [ANN, {"op": "d", "owner_id": 2}, {"op": "d", "owner_id": 3, "name": None}],
        10: [ANN, {"op": "u", "owner_id": 4}],  # not a delete: its required attributes are missing
        11: [ANN, {"op": "d", "owner_id": 5, "name": 7}],  # a delete's value of the wrong type: bronze cannot cast it
    })
    entity = cdc.entities["owner"]
    with GxValidator(server) as validator:
        passed, missing, wrong = (validator.validate(plan_entity(cdc, entity, b, previous=None)) for b in (9, 10, 11))
    assert passed.passed and passed.message is None and passed.rows == 3
    assert not missing.passed and missing.message is not None
    assert "attribute name: 1 of 2 records are missing it or have the wrong type: found missing, expected string" \
        " (landing record #2)" in missing.message
    assert not wrong.passed and wrong.message == (
        "quality gate failed for owner (batch 11), 1 expectation(s): attribute name: 1 of 2 records are missing it or"
        " have the wrong type: found integer, expected string (landing record #2)")


def test_a_presence_check_judges_the_records_that_are_not_deletes() -> None:
    check = PlannedExpectation("present.note", ROWS, PRESENCE_EXPECTATION,
                               {"column": "note__type", "value_set": ["missing"], "mostly": 1e-12},
                               "attribute note carried by at least one record of the batch", "attribute note",
                               {"presence": True}, severity="error")
    plan = EntityPlan("thing", 9, {ROWS: "select 1"}, [check], "record", [], {ROWS: ["_record_no"]})
    # 3 delete records without the attribute (no kind: GX's missing), 2 other records that lack it too.
    failed = verdict(plan, {"present.note": (True, {"element_count": 5, "unexpected_count": 2,
                                                    "missing_count": 3})}).outcomes[0]
    assert not failed.success
    assert failed.observed == {"rows": 5, "carried": 0, "delete_records": 3}
    assert failed.summary == ("attribute note: carried by none of the 2 records (no record has the key) (and 3 "
                              "delete record(s) without it, which need not carry it)")
    # One other record carries it: passed.
    passed = verdict(plan, {"present.note": (True, {"element_count": 5, "unexpected_count": 1,
                                                    "missing_count": 3})}).outcomes[0]
    assert passed.success and passed.observed == {"rows": 5, "carried": 1, "delete_records": 3}
    # Only delete records in the batch: nothing to judge.
    assert verdict(plan, {"present.note": (True, {"element_count": 3, "unexpected_count": 0,
                                                  "missing_count": 3})}).outcomes[0].success
    # No delete records (GX says missing_count 0): as before.
    assert verdict(plan, {"present.note": (True, {"element_count": 3, "unexpected_count": 3,
                                                  "missing_count": 0})}).outcomes[0].summary == \
        "attribute note: carried by none of the 3 records (no record has the key)"
