"""The connectors, by system type: landing asks `connector_for(system.type)`, never for a type by name."""

from __future__ import annotations

from ingestion.connectors.base import CheckingConnector, Connector, CursorReached, EndpointCheck, PendingLoad
from ingestion.connectors.files import FilesConnector
from ingestion.connectors.json_files import JsonFilesConnector
from ingestion.connectors.mongodb import MongoDbConnector
from ingestion.connectors.rest_api import RestApiConnector
from ingestion.connectors.sql_database import SqlDatabaseConnector

CONNECTORS: dict[str, Connector] = {"json_files": JsonFilesConnector(), "files": FilesConnector(),
                                    "rest_api": RestApiConnector(), "mongodb": MongoDbConnector(),
                                    "sql_database": SqlDatabaseConnector()}

__all__ = ["CONNECTORS", "CheckingConnector", "Connector", "CursorReached", "EndpointCheck", "PendingLoad",
           "connector_for"]


def connector_for(system_type: str) -> Connector:
    try:
        return CONNECTORS[system_type]
    except KeyError:
        known = ", ".join(sorted(CONNECTORS))
        raise ValueError(f"no connector for system type {system_type!r}; known types: {known}") from None
