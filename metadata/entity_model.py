"""Entity models: one small Pydantic model per entity declares its attributes, types, key and SCD types.

The model mirrors the shape of a source record (a nested object is a nested model), so the bronze
patterns can derive every column, its JSON path and its PostgreSQL type from it:

    class Vehicle(EntityModel):
        vehicle_id: Key[str]
        mileage_km: Scd1[int]          # overwritten in every version
        color: str = Field(description="Body colour as registered")  # SCD type 2, the default
        owner: VehicleOwner            # nested object -> owner_<field> columns

A field's `description` becomes its column's description in dbt's docs and in the Dagster UI.
"""

from __future__ import annotations

import datetime as dt
import decimal
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class _PrimaryKey:
    """Marks an attribute as (part of) the entity's primary key."""


class _Scd1:
    """Marks an attribute as SCD type 1: a change overwrites it in every version of the key."""


Key = Annotated[T, _PrimaryKey()]
Scd1 = Annotated[T, _Scd1()]


class EntityModel(BaseModel):
    """Base of every entity model; extra source fields are allowed (they land, they are not modelled)."""

    model_config = ConfigDict(extra="allow")


_PG_TYPES: dict[Any, str] = {
    str: "text",
    int: "bigint",
    float: "double precision",
    decimal.Decimal: "numeric",
    bool: "boolean",
    dt.date: "date",
    dt.datetime: "timestamptz",
    dict: "jsonb",
    list: "jsonb",
    Any: "jsonb",
}


@dataclass(frozen=True)
class Attribute:
    """One modelled field of a source record, before a bronze pattern turns it into columns."""

    path: tuple[str, ...]  # JSON path from the record (or list item) root
    pg_type: str  # PostgreSQL type; "record" for a nested model
    primary_key: bool
    scd_type: int
    nullable: bool
    nested: type[BaseModel] | None = None
    description: str = ""  # from `Field(description=...)`; empty when the model gives none


class EntityModelError(ValueError):
    """An entity model declares something the platform cannot map."""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip Optional[...] and return (inner type, nullable)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            raise EntityModelError(f"union type {annotation!r} is not supported; use one type or Optional")
        return args[0], nullable
    return annotation, False


def attributes(model: type[BaseModel], *, prefix: tuple[str, ...] = ()) -> list[Attribute]:
    """The fields of `model` as attributes, in declaration order, nested models not expanded."""
    result: list[Attribute] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        inner, nullable = _unwrap(field.annotation)
        origin = typing.get_origin(inner) or inner
        nested = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
        if nested is None and origin not in _PG_TYPES:
            raise EntityModelError(f"field {name!r} has type {inner!r}, which has no PostgreSQL mapping")
        markers = field.metadata
        result.append(
            Attribute(
                path=prefix + (alias,),
                pg_type="record" if nested else _PG_TYPES[origin],
                primary_key=any(isinstance(m, _PrimaryKey) for m in markers),
                scd_type=1 if any(isinstance(m, _Scd1) for m in markers) else 2,
                nullable=nullable or not field.is_required(),
                nested=nested,
                description=field.description or "",
            )
        )
    return result
