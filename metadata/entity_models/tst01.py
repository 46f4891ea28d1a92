"""Entity models of TST01, the fictional car registry that delivers JSON files (the demo and tests)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from metadata.entity_model import EntityModel, Key, Scd1


class Address(BaseModel):
    street: str
    city: str
    postcode: str


class Owner(EntityModel):
    owner_id: Key[int]
    name: str
    email: Scd1[str]
    address: Address


class VehicleOwner(BaseModel):
    owner_id: int
    since: dt.date


class Vehicle(EntityModel):
    vehicle_id: Key[str]
    vin: str
    make: str
    model: str
    year: int
    color: str
    mileage_km: Scd1[int]
    owner: VehicleOwner


class VehicleOption(EntityModel):
    """An item of a vehicle's `options` list; keyed by the vehicle and the option code."""

    code: Key[str]
    name: str
    price: float
