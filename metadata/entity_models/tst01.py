"""Entity models of TST01, the fictional car registry that delivers JSON files (the demo and tests).

Every field is described: the descriptions are what an analyst reads for each column in dbt's docs
and in the Dagster UI (a nested model's fields become `<field>_<nested field>` columns).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from metadata.entity_model import EntityModel, Key, Scd1


class Address(BaseModel):
    """An owner's postal address as held by the registry."""

    street: str = Field(description="Street and house number of the owner's postal address.")
    city: str = Field(description="City of the owner's postal address, e.g. Hamburg.")
    postcode: str = Field(description="Postcode of the owner's postal address, as text (leading zeros kept).")


class Owner(EntityModel):
    """A person or company registered as the owner of vehicles."""

    owner_id: Key[int] = Field(description="The registry's number for the owner; unique and never reused.")
    name: str = Field(description="Full name of the owner as registered.")
    email: Scd1[str] = Field(
        description="Contact e-mail address of the owner; in silver a new address overwrites every version (SCD1)."
    )
    address: Address = Field(description="Postal address of the owner.")


class VehicleOwner(BaseModel):
    """The owner a vehicle is registered to, as the vehicle record gives it."""

    owner_id: int = Field(description="Number of the owner the vehicle is registered to (the owner entity's owner_id).")
    since: dt.date = Field(description="Date from which the vehicle is registered to this owner.")


class Vehicle(EntityModel):
    """A vehicle in the registry, with its current owner and the options fitted to it."""

    vehicle_id: Key[str] = Field(description="The registry's identifier of the vehicle, e.g. V0000001.")
    vin: str = Field(description="Vehicle identification number (VIN) stamped on the chassis.")
    make: str = Field(description="Manufacturer of the vehicle, e.g. Volvo or Volkswagen.")
    model: str = Field(description="Model name given by the manufacturer, e.g. Golf.")
    year: int = Field(description="Model year of the vehicle (four digits).")
    color: str = Field(
        description="Body colour as registered, in lower case, e.g. silver; in silver a repaint opens a new version."
    )
    mileage_km: Scd1[int] = Field(
        description="Odometer reading in kilometres at the last report; in silver a new reading overwrites every "
        "version (SCD1)."
    )
    owner: VehicleOwner = Field(description="The owner the vehicle is currently registered to.")


class VehicleOption(EntityModel):
    """An item of a vehicle's `options` list; keyed by the vehicle and the option code."""

    code: Key[str] = Field(description="Three-letter code of the option, e.g. AHK; unique within a vehicle.")
    name: str = Field(description="Name of the option, e.g. Tow bar.")
    price: float = Field(description="List price of the option when fitted, in the registry's currency.")
