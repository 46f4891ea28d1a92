"""Prepare the dbt project while the platform image is built (`python -m codegen.prepare_image`), so a
container starts without parsing: the generated files, dbt's manifest and the parse marker are in the image.

The build has no database and no secrets, and needs neither: `dbt parse` does not connect (profiles.yml
has defaults for every connection setting), and the dbt files follow from the declarations, never from a
secret's value. So the declarations are checked with a store that accepts every secret reference without
holding a value; values are resolved at run time only, and none can end up in the image.

A container whose metadata differs from the image's (say, loaded from MongoDB after a `deploy-metadata` of
newer declarations) generates and parses again at start-up, as `prepare` does whenever the project changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from codegen.dbt_files import DBT_PROJECT_DIR
from codegen.dbt_parse import prepare
from metadata.catalog import MetadataError, load_catalog


class BuildTimeSecrets:
    """A secret store for the build: every key counts as present; asking for a value is a bug."""

    def key_problem(self, key: str) -> str | None:
        return None  # the run-time store checks its keys when the container starts

    def has(self, key: str) -> bool:
        return True

    def get(self, key: str) -> str:
        raise RuntimeError(f"secret {key!r} was asked for while building the image: values are resolved at run time")

    def describe(self, key: str) -> str:
        return "resolved at run time, never at build time"


def prepare_image(*, project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Generate the dbt files from the bundled declarations and parse the project; the manifest's path."""
    return prepare(load_catalog(secrets=BuildTimeSecrets()), project_dir=project_dir)


def main() -> int:
    try:
        manifest = prepare_image()
    except MetadataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"dbt manifest prepared: {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
