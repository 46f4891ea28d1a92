"""The columns a bronze pattern derives from an entity model: name, JSON path, type, key, SCD type.

This is the one place that knows the patterns; the dbt generator, the quality gate and the validator
all call `bronze_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from metadata.entity_model import Attribute, EntityModelError, attributes
from metadata.models import CopyPattern, ExplodePattern, FlattenPattern
from metadata.naming import to_identifier

POSITION_COLUMN = "position"


@dataclass(frozen=True)
class Column:
    name: str  # PostgreSQL column name
    pg_type: str
    path: tuple[str, ...]  # JSON path, from the record root ("record") or the list item ("item")
    source: Literal["record", "item", "position"]
    primary_key: bool
    scd_type: int
    nullable: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "type": self.pg_type,
            "path": list(self.path),
            "source": self.source,
            "primary_key": self.primary_key,
            "scd_type": self.scd_type,
        }


def _flat(
    attrs: list[Attribute],
    source: Literal["record", "item"],
    *,
    expand: bool,
    within: tuple[type[BaseModel], ...] = (),
) -> list[Column]:
    """Columns of `attrs`; nested models are expanded (path joined by '_') or kept as JSONB.

    `within` holds the nested models being expanded, so a model that contains itself is reported
    instead of recursing forever.
    """
    columns: list[Column] = []
    for attr in attrs:
        if attr.nested is not None and expand:
            if attr.nested in within:
                raise EntityModelError(
                    f"field {'.'.join(attr.path)!r} nests {attr.nested.__name__} inside itself, which cannot be "
                    "flattened into columns; type it as dict (one JSONB column) or use the copy pattern"
                )
            inner = attributes(attr.nested, prefix=attr.path)
            # A nested object's key marks count only for itself, not for the entity.
            columns += [
                Column(c.name, c.pg_type, c.path, source, attr.primary_key and c.primary_key, c.scd_type, True)
                for c in _flat(inner, source, expand=True, within=(*within, attr.nested))
            ]
            continue
        columns.append(
            Column(
                name=to_identifier("_".join(attr.path)),
                pg_type="jsonb" if attr.nested is not None else attr.pg_type,
                path=attr.path,
                source=source,
                primary_key=attr.primary_key,
                scd_type=attr.scd_type,
                nullable=attr.nullable,
            )
        )
    return columns


def bronze_columns(
    pattern: CopyPattern | FlattenPattern | ExplodePattern,
    model: type[BaseModel],
    *,
    parent_model: type[BaseModel] | None = None,
    parent_pattern: CopyPattern | FlattenPattern | ExplodePattern | None = None,
) -> list[Column]:
    """Columns of one entity in bronze (and silver), in order, for its pattern."""
    if isinstance(pattern, CopyPattern):
        return _flat(attributes(model), "record", expand=False)
    if isinstance(pattern, FlattenPattern):
        return _flat(attributes(model), "record", expand=True)
    if parent_model is None or parent_pattern is None or isinstance(parent_pattern, ExplodePattern):
        raise EntityModelError("an explode pattern needs a parent entity with a copy or flatten pattern")
    parent_keys = [
        Column(c.name, c.pg_type, c.path, "record", True, 2, False)
        for c in bronze_columns(parent_pattern, parent_model)
        if c.primary_key
    ]
    items = _flat(attributes(model), "item", expand=True)
    if not any(c.primary_key for c in items):
        items.insert(0, Column(POSITION_COLUMN, "integer", (), "position", True, 2, False))
    return parent_keys + items
