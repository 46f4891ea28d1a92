"""Entity models of DEL01, a test-only json_files system of delta entities whose records say when their key
was deleted: an operation field that is not an attribute (`op`, as change data capture writes it) and a
soft-delete flag that is one (`is_deleted`); test_deletes.py runs them end to end."""

from __future__ import annotations

import decimal

from pydantic import Field

from metadata.entity_model import EntityModel, Key, Scd1


class Account(EntityModel):
    """An account; its change records also carry `op` (c, u, d), which is not modelled."""

    account_id: Key[int] = Field(description="Number of the account.")
    name: str = Field(description="Holder's name (required: a delete record may still leave it out).")
    balance: decimal.Decimal = Field(description="Balance.")
    tier: Scd1[str] = Field(description="Tier, SCD1: a delete record's value never overwrites it.")


class Member(EntityModel):
    """A member; a deleted one is delivered with is_deleted true."""

    member_id: Key[str] = Field(description="Member id.")
    email: str = Field(description="E-mail address.")
    is_deleted: bool | None = Field(default=None, description="Soft-delete flag: true marks a delete.")
