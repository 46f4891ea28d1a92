"""The metadata registry in MongoDB (metadata.registry, metadata.source, `dataplatform deploy-metadata` /
`rollback-metadata`), over a real socket: against NX-27017, a MongoDB wire-protocol server the test starts
on loopback (tests/mongo_wire_server.py), or a real MongoDB when DATAPLATFORM_TEST_MONGODB_URL is set.

A deploy validates the files first and writes nothing when they are invalid; it overwrites the live
collections and keeps every version in `deployments`; a rollback restores the previous one with one
command; DATAPLATFORM_METADATA_SOURCE=mongodb makes the platform read exactly what was deployed, and an
interrupted deploy or an unreachable server is one clear message (exit 6), never half the metadata.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from mongo_wire_server import fresh_database, mongodb_server

from cli.main import EXIT_INVALID, EXIT_OK, EXIT_SERVICE, main
from metadata.catalog import Catalog, load_catalog
from metadata.registry import RegistryError, open_registry
from metadata.source import load_platform_catalog


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with mongodb_server(tmp_path_factory.mktemp("mongodb")) as url:
        yield url


@pytest.fixture
def url(server: str, monkeypatch: pytest.MonkeyPatch, folder: Path, tmp_path: Path) -> Iterator[str]:
    """A fresh database; the CLI's settings point at it and at a private copy of the declarations."""
    with fresh_database(server) as database_url:
        monkeypatch.setenv("DATAPLATFORM_MONGODB_URL", database_url)
        monkeypatch.setenv("DATAPLATFORM_METADATA_DIR", str(folder))
        monkeypatch.setenv("DATAPLATFORM_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("DATAPLATFORM_METADATA_SOURCE", raising=False)
        yield database_url


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code or 0)


def database(url: str) -> Any:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    return client.get_default_database()


def files(folder: Path) -> dict[str, Any]:
    return {name: json.loads((folder / f"{name}.json").read_text()) for name in ("systems", "entities", "actions")}


def live(url: str) -> dict[str, list[dict[str, Any]]]:
    db = database(url)
    return {name: list(db[name].find().sort("position", 1)) for name in ("systems", "entities", "actions")}


def history(url: str) -> list[tuple[int, str, int | None]]:
    return [(d["version"], d["state"], d["restored_from"]) for d in database(url).deployments.find().sort("version")]


def same_metadata(a: Catalog, b: Catalog) -> bool:
    return (a.systems, a.entities, a.actions, a.columns) == (b.systems, b.entities, b.actions, b.columns)


def edit(folder: Path, file: str, change: Any) -> None:
    data = json.loads((folder / file).read_text())
    change(data)
    (folder / file).write_text(json.dumps(data, indent=2))


def test_deploy_writes_one_document_per_declaration_and_a_history_version(
        url: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    with open_registry(url) as registry:
        where = registry.where
    assert capsys.readouterr().out == (
        f"deployed metadata from {folder} to {where} as version 1: 1 system(s), 3 entity(ies), 2 action(s); "
        "`dataplatform rollback-metadata` restores the previous version\n")
    declared = files(folder)
    assert live(url) == {
        "systems": [{"_id": s["id"], "position": i, "deployment": 1, "declaration": s}
                    for i, s in enumerate(declared["systems"]["systems"])],
        "entities": [{"_id": e["name"], "position": i, "deployment": 1, "declaration": e}
                     for i, e in enumerate(declared["entities"]["entities"])],
        "actions": [{"_id": a["name"], "position": i, "deployment": 1, "declaration": a}
                    for i, a in enumerate(declared["actions"]["actions"])],
    }
    (deployment,) = database(url).deployments.find({}, {"_id": 0, "deployed_at": 0})
    assert deployment == {"version": 1, "origin": str(folder), "restored_from": None, "state": "deployed",
                          "declarations": declared}


def test_the_platform_reads_what_was_deployed(url: str, folder: Path, monkeypatch: pytest.MonkeyPatch,
                                              store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    from_files = load_catalog(folder, secrets=store)
    (folder / "systems.json").unlink()  # from now on the files cannot be what is read
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "mongodb")
    from_registry = load_platform_catalog(secrets=store)
    assert same_metadata(from_registry, from_files)
    assert list(from_registry.systems) == ["TST01"]
    assert from_registry.folder is None
    capsys.readouterr()
    assert exit_code(["validate"]) == EXIT_OK
    with open_registry(url) as registry:
        assert capsys.readouterr().out == (
            f"metadata in {registry.where} (deploy 1) is valid: 1 system(s), 3 entity(ies), 2 action(s)\n")


def test_redeploy_overwrites_and_rollback_restores_the_previous_version(
        url: str, folder: Path, monkeypatch: pytest.MonkeyPatch, store: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    first = files(folder)
    edit(folder, "entities.json", lambda d: d["entities"].pop())  # the last entity is withdrawn
    edit(folder, "systems.json", lambda d: d["systems"][0].update(description="second version"))
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    second = files(folder)
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "mongodb")
    assert [d["declaration"] for d in live(url)["entities"]] == second["entities"]["entities"]
    assert load_platform_catalog(secrets=store).systems["TST01"].description == "second version"
    capsys.readouterr()

    assert exit_code(["rollback-metadata"]) == EXIT_OK
    with open_registry(url) as registry:
        assert capsys.readouterr().out == f"restored version 1 of the metadata in {registry.where} as version 3\n"
    assert [d["declaration"] for d in live(url)["entities"]] == first["entities"]["entities"]
    assert {d["deployment"] for docs in live(url).values() for d in docs} == {3}
    assert load_platform_catalog(secrets=store).systems["TST01"].description == first["systems"]["systems"][0][
        "description"]
    assert history(url) == [(1, "deployed", None), (2, "deployed", None), (3, "deployed", 1)]

    assert exit_code(["rollback-metadata"]) == EXIT_OK  # the previous of 3 is 2: a rollback can be undone
    assert exit_code(["rollback-metadata", "--to", "1"]) == EXIT_OK
    assert history(url)[3:] == [(4, "deployed", 2), (5, "deployed", 1)]
    assert [d["declaration"] for d in live(url)["entities"]] == first["entities"]["entities"]
    capsys.readouterr()
    assert exit_code(["rollback-metadata", "--to", "9"]) == EXIT_INVALID
    with open_registry(url) as registry:
        assert capsys.readouterr().err == (
            f"error: {registry.where} has no completed deploy 9 (completed: 1, 2, 3, 4, 5)\n")


def test_rollback_with_nothing_before_is_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    capsys.readouterr()
    assert exit_code(["rollback-metadata"]) == EXIT_INVALID
    with open_registry(url) as registry:
        assert capsys.readouterr().err == (
            f"error: {registry.where} has no deploy before the current one (1) to restore\n")
    assert history(url) == [(1, "deployed", None)]


def test_invalid_metadata_deploys_nothing(url: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    before = live(url)
    edit(folder, "actions.json", lambda d: d["actions"][0].update(after_systems=["XYZ99"]))
    capsys.readouterr()
    assert exit_code(["deploy-metadata"]) == EXIT_INVALID
    assert capsys.readouterr().err == (
        "error: nothing was deployed: invalid metadata (1 problem(s)):\n"
        "  - actions.json: action refresh_gold: field 'after_systems': unknown system 'XYZ99'\n")
    assert live(url) == before
    assert history(url) == [(1, "deployed", None)]


def test_an_interrupted_deploy_is_refused_whole_until_deployed_again_or_rolled_back(
        url: str, monkeypatch: pytest.MonkeyPatch, store: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    assert exit_code(["deploy-metadata"]) == EXIT_OK
    db = database(url)
    # Deploy 3 stopped after its history document and the first collection: what a crash leaves.
    third = db.deployments.find_one({"version": 2}, {"_id": 0})
    db.deployments.insert_one({**third, "version": 3, "state": "writing"})
    db.systems.update_many({}, {"$set": {"deployment": 3}})
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "mongodb")
    with pytest.raises(RegistryError) as interrupted, open_registry(url) as registry:
        where = registry.where
        registry.live()
    assert str(interrupted.value) == (
        f"{where}: deploy 3 did not finish (state 'writing'); run `dataplatform deploy-metadata` again, or "
        "`dataplatform rollback-metadata` to restore the previous version")
    capsys.readouterr()
    assert exit_code(["validate"]) == EXIT_SERVICE
    assert capsys.readouterr().err == f"error: {interrupted.value}\n"
    # A deploy that ended but whose collections were changed by hand since is refused too.
    db.deployments.update_one({"version": 3}, {"$set": {"state": "deployed"}})
    with pytest.raises(RegistryError, match=r"collection 'entities' does not hold deploy 3 \(3 document\(s\), 3 "
                                            r"expected; other versions: owner, vehicle, vehicle_option\)"):
        load_platform_catalog(secrets=store)
    assert exit_code(["rollback-metadata"]) == EXIT_OK  # to 2: the newest complete deploy before 3
    assert history(url)[-1] == (4, "deployed", 2)
    assert list(load_platform_catalog(secrets=store).systems) == ["TST01"]


def test_an_unreachable_registry_is_one_message_naming_it_without_its_password(
        url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    password = "Mongo-pw-Zx81q"
    monkeypatch.setenv("DATAPLATFORM_MONGODB_URL", f"mongodb://platform:{password}@127.0.0.1:{port}/metadata"
                                                   "?serverSelectionTimeoutMS=1000")
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "mongodb")
    assert exit_code(["validate"]) == EXIT_SERVICE
    out, err = capsys.readouterr()
    assert err == (f"error: the metadata registry (mongodb://platform:***@127.0.0.1:{port}/metadata"
                   "?serverSelectionTimeoutMS=1000) cannot be reached: is MongoDB running, and is "
                   "DATAPLATFORM_MONGODB_URL right?\n")
    assert exit_code(["deploy-metadata"]) == EXIT_SERVICE
    assert password not in out + err + capsys.readouterr().err


def test_unset_registry_or_unknown_source_say_what_to_set(
        url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "mongodb")
    monkeypatch.delenv("DATAPLATFORM_MONGODB_URL")
    assert exit_code(["validate"]) == EXIT_SERVICE
    assert capsys.readouterr().err == (
        "error: the metadata registry needs DATAPLATFORM_MONGODB_URL (e.g. mongodb://mongodb:27017)\n")
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "sqlite")
    assert exit_code(["validate"]) == EXIT_SERVICE
    assert capsys.readouterr().err == (
        "error: DATAPLATFORM_METADATA_SOURCE='sqlite' is not a metadata source; use one of: files, mongodb\n")


def test_an_empty_registry_says_deploy_first(url: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATAPLATFORM_METADATA_SOURCE", "mongodb")
    assert exit_code(["validate"]) == EXIT_SERVICE
    with open_registry(url) as registry:
        assert capsys.readouterr().err == (
            f"error: {registry.where} holds no metadata yet: run `dataplatform deploy-metadata`\n")
