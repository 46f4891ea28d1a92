"""Run options as typed Dagster run config (the UI's launchpad shows them with their descriptions)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field


class LandingConfig(dg.Config):
    force: bool = Field(
        default=False,
        description="Land the system's last delivery again under its own batch id (its new rows replace the old"
        " ones once complete); silver skips it if its values are the same, else re-applies it and every later batch.",
    )
    batch: int | None = Field(
        default=None,
        description="With force: the batch to land again (default: the system's last landed batch), e.g. one"
        " that failed in bronze or silver and holds its entity's later batches back.",
    )


class ReplayRequest(dg.Config):
    system_id: str
    entity: str
    from_batch: int = Field(description="first batch to apply again; it and every later batch are re-applied in order")


class TransformConfig(dg.Config):
    replay: list[ReplayRequest] = Field(
        default_factory=list,
        description="Entities whose silver is backed out to before a batch and rebuilt from it"
        " (`dataplatform replay`).",
    )
