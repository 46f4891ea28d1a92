"""The metadata registry in MongoDB: the declarations as deployed, with every earlier deploy kept.

Database `metadata` (or the one DATAPLATFORM_MONGODB_URL names in its path). Collections `systems`,
`entities` and `actions` hold the deployed declarations, one document per system / entity / action:
`{"_id": <id or name>, "position": <index in its file>, "deployment": <version>, "declaration": {...}}`,
the declaration exactly as in its JSON file. `deployments` is the history: one document per deploy
`{"version", "deployed_at", "origin", "restored_from", "state", "declarations": {"systems": {...}, ...}}`.

A deploy writes its history document first (state `writing`), then overwrites the three collections,
then marks it `deployed`. A reader takes the live collections only when they all carry the newest
version and it is `deployed`, so an interrupted deploy is refused as a whole (deploy again, or roll
back) instead of being read half. No multi-document transaction is needed: a standalone MongoDB has none.
Entity models (`module:Class`) are Python code in the image; only the JSON declarations live here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from secret_store.redact import redact, remember_secret

if TYPE_CHECKING:
    import pymongo

# pymongo's ASCENDING / DESCENDING: pymongo itself is imported only when the registry is opened (this module is
# imported by every `dataplatform` command, which mostly reads its metadata from files).
ASCENDING, DESCENDING = 1, -1

MONGODB_URL_ENV = "DATAPLATFORM_MONGODB_URL"
DEFAULT_DATABASE = "metadata"
HISTORY = "deployments"
TIMEOUT_MS = 5000
# Declaration file -> (its collection, which is also the list inside the file; the field that names an item).
COLLECTIONS = {"systems.json": ("systems", "id"), "entities.json": ("entities", "name"),
               "actions.json": ("actions", "name")}


class RegistryError(RuntimeError):
    """The registry cannot be used: not configured, unreachable, access refused, or in no state to read."""


def registry_url() -> str:
    url = os.environ.get(MONGODB_URL_ENV, "").strip()
    if not url:
        raise RegistryError(f"the metadata registry needs {MONGODB_URL_ENV} (e.g. mongodb://mongodb:27017)")
    return url


def _remember_password(url: str) -> None:
    """The URL's password is masked in every message from now on, whatever quotes it (a driver's error)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        remember_secret(unquote(password))


def _redacted(url: str) -> str:
    from warehouse.embedded import redact_url

    return redact(redact_url(url))


class Registry:
    """The registry in one database of one MongoDB server."""

    def __init__(self, client: pymongo.MongoClient[dict[str, Any]], *, url: str) -> None:
        self.client, self.url = client, url
        self.db = client.get_default_database(default=DEFAULT_DATABASE)
        self.where = f"MongoDB {_redacted(url)} database {self.db.name}"

    # -- reading -------------------------------------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        """Every deploy, oldest first, without its declarations."""
        return list(self.db[HISTORY].find({}, {"_id": 0, "declarations": 0}).sort("version", ASCENDING))

    def current_version(self) -> int | None:
        newest = self.db[HISTORY].find_one({}, {"version": 1}, sort=[("version", DESCENDING)])
        return None if newest is None else int(newest["version"])

    def stored(self, version: int) -> dict[str, Any] | None:
        """The declarations deploy `version` wrote ({"systems.json": {...}, ...}), or None."""
        doc = self.db[HISTORY].find_one({"version": version})
        if doc is None:
            return None
        return {file: doc["declarations"][collection] for file, (collection, _) in COLLECTIONS.items()}

    def live(self) -> tuple[int, dict[str, Any]]:
        """The deployed declarations and their version; refused when none is deployed or a deploy did not end."""
        newest = self.db[HISTORY].find_one({}, sort=[("version", DESCENDING)])
        if newest is None:
            raise RegistryError(f"{self.where} holds no metadata yet: run `dataplatform deploy-metadata`")
        version = int(newest["version"])
        what_to_do = ("run `dataplatform deploy-metadata` again, or `dataplatform rollback-metadata` "
                      "to restore the previous version")
        if newest.get("state") != "deployed":
            raise RegistryError(f"{self.where}: deploy {version} did not finish (state {newest.get('state')!r}); "
                                + what_to_do)
        declarations: dict[str, Any] = {}
        for file, (collection, _) in COLLECTIONS.items():
            docs = list(self.db[collection].find().sort("position", ASCENDING))
            stale = [d["_id"] for d in docs if d.get("deployment") != version]
            expected = len(newest["declarations"][collection][collection])
            if stale or len(docs) != expected:
                raise RegistryError(f"{self.where}: collection {collection!r} does not hold deploy {version} "
                                    f"({len(docs)} document(s), {expected} expected; other versions: "
                                    f"{', '.join(map(str, stale[:5])) or 'none'}); " + what_to_do)
            declarations[file] = {collection: [d["declaration"] for d in docs]}
        return version, declarations

    # -- writing -------------------------------------------------------------------------------------

    def deploy(self, declarations: dict[str, Any], *, origin: str, restored_from: int | None = None) -> int:
        """Write validated declarations as the next version (overwriting the live collections); the
        version. A concurrent deploy of the same version fails on the history's unique index."""
        import pymongo.errors

        self.db[HISTORY].create_index([("version", ASCENDING)], unique=True)
        version = (self.current_version() or 0) + 1
        try:
            self.db[HISTORY].insert_one({
                "version": version, "deployed_at": datetime.now(UTC), "origin": origin,
                "restored_from": restored_from, "state": "writing",
                "declarations": {collection: declarations[file] for file, (collection, _) in COLLECTIONS.items()},
            })
        except pymongo.errors.DuplicateKeyError:
            raise RegistryError(f"{self.where}: another deploy took version {version} at the same time; "
                                "run the command again when it has finished") from None
        for file, (collection, name_field) in COLLECTIONS.items():
            items = declarations[file][collection]
            self.db[collection].delete_many({})
            if items:
                self.db[collection].insert_many([
                    {"_id": item[name_field], "position": position, "deployment": version, "declaration": item}
                    for position, item in enumerate(items)])
        self.db[HISTORY].update_one({"version": version}, {"$set": {"state": "deployed"}})
        return version

    def rollback_target(self, to: int | None) -> int:
        """The version a rollback restores: `to`, or the newest deployed version before the current one."""
        current = self.current_version()
        if to is not None:
            doc = self.db[HISTORY].find_one({"version": to}, {"state": 1})
            if doc is None or doc.get("state") != "deployed":
                known = ", ".join(str(d["version"]) for d in self.history() if d.get("state") == "deployed")
                raise LookupError(f"{self.where} has no completed deploy {to} (completed: {known or 'none'})")
            return to
        earlier = self.db[HISTORY].find_one({"version": {"$lt": current or 0}, "state": "deployed"},
                                            sort=[("version", DESCENDING)])
        if earlier is None:
            raise LookupError(f"{self.where} has no deploy before the current one ({current or 'none'}) to restore")
        return int(earlier["version"])


@contextmanager
def open_registry(url: str | None = None, *, timeout_ms: int = TIMEOUT_MS) -> Iterator[Registry]:
    """The registry at `url` (default DATAPLATFORM_MONGODB_URL); every driver failure inside the block
    becomes one RegistryError naming the server (its password masked) and what to do."""
    import pymongo
    import pymongo.errors

    url = url or registry_url()
    _remember_password(url)
    try:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True)
    except (pymongo.errors.PyMongoError, ValueError) as err:  # e.g. a malformed URL
        raise RegistryError(f"{MONGODB_URL_ENV} is not a usable MongoDB URL ({_redacted(url)}): "
                            f"{redact(err)}") from None
    try:
        registry = Registry(client, url=url)
        yield registry
    except pymongo.errors.ServerSelectionTimeoutError:
        raise RegistryError(f"the metadata registry ({_redacted(url)}) cannot be reached: is MongoDB running, "
                            f"and is {MONGODB_URL_ENV} right?") from None
    except pymongo.errors.OperationFailure as err:
        raise RegistryError(f"the metadata registry ({_redacted(url)}) refused the request: "
                            f"{redact(err.details.get('errmsg') if err.details else err)} (code {err.code}); "
                            "check the user and password in the URL and its roles") from None
    except pymongo.errors.PyMongoError as err:
        raise RegistryError(f"the metadata registry ({_redacted(url)}) failed: {redact(err)}") from None
    finally:
        client.close()
