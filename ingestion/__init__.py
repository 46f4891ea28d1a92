"""Ingestion side of the data platform: source systems and loaders."""
