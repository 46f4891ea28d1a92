"""The connectors, by system type: landing asks `connector_for(system.type)`, never for a type by name.

A connector's module is imported the first time its type is asked for: a run of a `json_files` system
never imports SQLAlchemy, pymongo, the REST client or the file readers (their imports cost the start-up
of every `dataplatform` command and of every Dagster process, and memory, for nothing).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from ingestion.connectors.base import CheckingConnector, Connector, CursorReached, EndpointCheck, PendingLoad

# type -> (module, class) of its connector
_CONNECTOR_CLASSES = {
    "json_files": ("ingestion.connectors.json_files", "JsonFilesConnector"),
    "files": ("ingestion.connectors.files", "FilesConnector"),
    "rest_api": ("ingestion.connectors.rest_api", "RestApiConnector"),
    "mongodb": ("ingestion.connectors.mongodb", "MongoDbConnector"),
    "sql_database": ("ingestion.connectors.sql_database", "SqlDatabaseConnector"),
}


class _Connectors(Mapping[str, Connector]):
    """The registry: system type -> its connector, built (and its module imported) on first use."""

    def __init__(self) -> None:
        self._built: dict[str, Connector] = {}

    def __getitem__(self, system_type: str) -> Connector:
        if system_type not in self._built:
            module, name = _CONNECTOR_CLASSES[system_type]
            self._built[system_type] = getattr(importlib.import_module(module), name)()
        return self._built[system_type]

    def __iter__(self) -> Iterator[str]:
        return iter(_CONNECTOR_CLASSES)

    def __len__(self) -> int:
        return len(_CONNECTOR_CLASSES)


CONNECTORS: Mapping[str, Connector] = _Connectors()

__all__ = ["CONNECTORS", "CheckingConnector", "Connector", "CursorReached", "EndpointCheck", "PendingLoad",
           "connector_for"]


def connector_for(system_type: str) -> Connector:
    try:
        return CONNECTORS[system_type]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise ValueError(f"no connector for system type {system_type!r}; known types: {known}") from None
