"""What the platform knows: declarations, their Pydantic models, loading, validation and secrets."""

from metadata.catalog import Catalog, MetadataError, Problem, load_catalog

__all__ = ["Catalog", "MetadataError", "Problem", "load_catalog"]
