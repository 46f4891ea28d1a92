"""Where the platform's metadata comes from, decided in one place (DATAPLATFORM_METADATA_SOURCE), and
the deploy / rollback of the declaration files to the MongoDB registry.

`files` (the default) reads the declarations folder (DATAPLATFORM_METADATA_DIR); `mongodb` reads what
`dataplatform deploy-metadata` last wrote to the registry (metadata.registry). Either way the same
validation runs (metadata.catalog), and the entity models stay Python code of the installed project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from metadata.catalog import Catalog, catalog_from_declarations, load_catalog, metadata_folder, read_declarations
from metadata.registry import RegistryError, open_registry
from secret_store.base import SecretStore

SOURCE_ENV = "DATAPLATFORM_METADATA_SOURCE"
SOURCES = ("files", "mongodb")


def metadata_source() -> str:
    source = os.environ.get(SOURCE_ENV, "files").strip().lower() or "files"
    if source not in SOURCES:
        raise RegistryError(f"{SOURCE_ENV}={source!r} is not a metadata source; use one of: {', '.join(SOURCES)}")
    return source


def load_platform_catalog(*, secrets: SecretStore | None = None) -> Catalog:
    """The validated metadata from the configured source; raises MetadataError listing every problem."""
    if metadata_source() == "files":
        return load_catalog(secrets=secrets)
    with open_registry() as registry:
        version, declarations = registry.live()
        origin = f"{registry.where} (deploy {version})"
    return catalog_from_declarations(declarations, origin=origin, secrets=secrets)


@dataclass(frozen=True)
class Deployed:
    version: int
    catalog: Catalog
    where: str
    restored_from: int | None = None


def deploy_metadata(folder: Path | None = None, *, url: str | None = None,
                    secrets: SecretStore | None = None) -> Deployed:
    """Validate the declaration files, then write them to the registry as its next version. Invalid
    metadata raises MetadataError before the registry is even opened: nothing is written."""
    folder = folder or metadata_folder()
    catalog = load_catalog(folder, secrets=secrets)
    declarations = read_declarations(folder)
    with open_registry(url) as registry:
        version = registry.deploy(declarations, origin=str(folder))
        return Deployed(version=version, catalog=catalog, where=registry.where)


def rollback_metadata(*, to: int | None = None, url: str | None = None,
                      secrets: SecretStore | None = None) -> Deployed:
    """Deploy an earlier version again (default: the one before the current), as a new version that
    records which one it restored. It is validated first, like any deploy (entity models may have
    changed since): invalid, it raises MetadataError and nothing is written. LookupError: no such version."""
    with open_registry(url) as registry:
        target = registry.rollback_target(to)
        declarations = registry.stored(target)
        where = registry.where
    assert declarations is not None
    catalog = catalog_from_declarations(declarations, origin=f"{where} (deploy {target})", secrets=secrets)
    with open_registry(url) as registry:
        version = registry.deploy(declarations, origin=f"rollback to deploy {target}", restored_from=target)
    return Deployed(version=version, catalog=catalog, where=where, restored_from=target)
