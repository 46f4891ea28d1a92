"""Pydantic models of the three declaration files: systems.json, entities.json, actions.json."""

from __future__ import annotations

import zoneinfo
from typing import Annotated, Any, Literal, get_args

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, field_validator, model_validator

from metadata.naming import path_segment_problem

# Names that end up in SQL, dbt or file names are restricted to plain ASCII (see the README's "Metadata is
# not code"): a system id, an entity / endpoint / action name, and an entity model reference.
SYSTEM_ID_PATTERN = r"^[A-Z]{3}[0-9]{2}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
MODEL_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
SystemId = Annotated[str, StringConstraints(pattern=SYSTEM_ID_PATTERN)]


class _Strict(BaseModel):
    """Unknown keys are typos in hand-written JSON: reject them instead of ignoring them."""

    model_config = ConfigDict(extra="forbid")


class SecretRef(_Strict):
    """A value kept out of metadata: resolved at run time from the secret store."""

    type: Literal["secret"]
    key: Annotated[str, StringConstraints(min_length=1)]


Value = SecretRef | str | int | float | bool


class JsonFilesConnection(_Strict):
    """A folder of deliveries: one sub-folder per delivery (named by its ISO date or timestamp),
    each holding one JSON file (an array of records) per endpoint."""

    type: Literal["json_files"]
    path: SecretRef | str = Field(
        description="folder of deliveries; a relative path is taken from DATAPLATFORM_HOME"
    )
    endpoints: dict[Name, str] = Field(min_length=1, description="endpoint name -> file name")


# A system's connection, by the system's `type` (the discriminator); the connector of each type is
# registered in ingestion/connectors. A new system type adds its model here and its connector there.
Connection = Annotated[JsonFilesConnection, Field(discriminator="type")]
CONNECTION_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(Connection)[0]) or
    (get_args(Connection)[0],)  # a union of one type is that type
}
_CONNECTION = TypeAdapter(Connection)


def parse_connection(system_type: str, connection: dict[str, Any]) -> Connection:
    """The typed connection of a system (raises pydantic's ValidationError, located under the type tag)."""
    return _CONNECTION.validate_python({**connection, "type": system_type})


def cron_problem(expression: str) -> str | None:
    """Why Dagster would refuse `expression` as a schedule's cron string (its rule: five fields that croniter reads,
    and no 30th or 31st of February), or None."""
    if not croniter.is_valid(expression):
        return "is not a cron expression croniter reads"
    fields = croniter.expand(expression)[0]
    if len(fields) != 5:
        return f"has {len(fields)} fields; give five: minute hour day-of-month month day-of-week"
    if fields[3] == [2] and len(fields[2]) == 1 and fields[2][0] in (30, 31):
        return "names a day February never has"
    return None


class Schedule(_Strict):
    """When a system loads by itself: a Dagster schedule of the system's job (stopped until turned on, unless
    `enabled`). The README's "Runs that start themselves" says how to turn one on and off."""

    cron: str = Field(description="five-field cron expression, e.g. '0 6 * * *' (06:00 every day) or '@hourly'")
    timezone: str = Field(description="IANA time zone the cron expression is read in, e.g. 'Europe/Amsterdam', 'UTC'")
    enabled: bool = Field(
        default=False,
        description="running from the start; otherwise stopped until turned on in the UI (the UI's choice then wins)",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        why = cron_problem(value)
        if why:
            raise ValueError(f"{value!r} {why}, e.g. '0 6 * * *' for 06:00 every day")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone; write e.g. 'Europe/Amsterdam' or 'UTC'") from None
        return value


HEADER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
Header = Annotated[str, StringConstraints(pattern=HEADER_PATTERN, max_length=64)]


CREDENTIAL_FIELDS = ("token", "hmac_secret")  # a webhook's: their values are never echoed in a problem


def _secret_only(value: Any) -> Any:
    """A credential is never written in metadata: refuse a plain value with what to write instead."""
    if value is not None and not isinstance(value, dict | SecretRef):
        raise ValueError('must be a secret reference, {"type": "secret", "key": "..."}, not the value itself')
    return value


class Webhook(_Strict):
    """How a source calls the platform when it has new data (`POST /hooks/{system_id}` of `dataplatform serve`):
    with a bearer token, or with an HMAC-SHA256 signature of the body; each call (one per delivery id) starts one
    run of the system's job."""

    token: SecretRef | None = Field(default=None, description="the bearer token the source sends")
    hmac_secret: SecretRef | None = Field(
        default=None, description="the key of the HMAC-SHA256 signature of the body the source sends"
    )
    signature_header: Header = Field(
        default="X-Signature-256", description="header holding the signature, hex, optionally prefixed 'sha256='"
    )
    delivery_id_header: Header = Field(
        default="X-Delivery-Id", description="header naming the delivery: a repeated one starts no second run"
    )
    min_interval_seconds: Annotated[int, Field(ge=0)] = Field(
        default=0, description="calls of this system closer together than this are refused (429); 0: no limit"
    )

    _secrets = field_validator("token", "hmac_secret", mode="before")(_secret_only)

    @model_validator(mode="after")
    def _one_credential(self) -> Webhook:
        if (self.token is None) == (self.hmac_secret is None):
            raise ValueError("declare exactly one of 'token' (bearer) and 'hmac_secret' (signature of the body)")
        if self.token is not None and "signature_header" in self.model_fields_set:
            raise ValueError("'signature_header' goes with 'hmac_secret', not with 'token'")
        return self


class System(_Strict):
    id: SystemId
    name: Annotated[str, StringConstraints(min_length=1)]
    description: str
    type: str
    connection: dict[str, Any]
    schedule: Schedule | None = Field(default=None, description="when the system loads by itself")
    webhook: Webhook | None = Field(default=None, description="how the source tells the platform it has new data")

    def endpoints(self) -> dict[str, str]:
        """Endpoint name -> what the connector reads for it."""
        return dict(self.connection.get("endpoints", {}))


class CopyPattern(_Strict):
    """Top-level attributes as they are; a nested object stays one JSONB column."""

    type: Literal["copy"]


class FlattenPattern(_Strict):
    """Nested objects become columns named by their path joined with underscores."""

    type: Literal["flatten"]


class ExplodePattern(_Strict):
    """A nested list becomes a child entity: one row per item, keyed by the parent's key plus the
    item's own key (if its model declares one) or its position in the list."""

    type: Literal["explode"]
    list_path: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="dot-separated path of the list in the parent record"
    )
    parent_entity: Name

    @field_validator("list_path")
    @classmethod
    def _segments(cls, value: str) -> str:
        for segment in value.split("."):
            why = path_segment_problem(segment)
            if why:
                raise ValueError(f"path segment {why}; separate segments with '.'")
        return value


BronzePattern = Annotated[CopyPattern | FlattenPattern | ExplodePattern, Field(discriminator="type")]


class RowCountCheck(_Strict):
    """The batch must hold between `min` and `max` rows of the entity (bounds inclusive; either may be
    left out). For an exploded child entity the rows are the list items, not the parent records."""

    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("give at least one of 'min' and 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) is greater than 'max' ({self.max})")
        return self


class RowCountVsPreviousBatchCheck(_Strict):
    """The batch's row count as a percentage of the previous successful batch of the same entity:
    the latest batch with an older batch timestamp whose quality gate passed for this entity (its
    count is the one the gate recorded then). Skipped for an entity's first batch, and when the
    previous batch had no rows (no percentage of nothing)."""

    min_percent: Annotated[float, Field(ge=0)] | None = None
    max_percent: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> RowCountVsPreviousBatchCheck:
        if self.min_percent is None and self.max_percent is None:
            raise ValueError("give at least one of 'min_percent' and 'max_percent'")
        if self.min_percent is not None and self.max_percent is not None and self.min_percent > self.max_percent:
            raise ValueError(f"'min_percent' ({self.min_percent}) is greater than 'max_percent' ({self.max_percent})")
        return self


class QualityChecks(_Strict):
    """Checks an entity declares on top of the generic ones every entity gets (primary key present and
    unique in the batch, declared attributes present with their declared types). An unknown check
    name is a validation error, never silently ignored."""

    row_count: RowCountCheck | None = None
    row_count_vs_previous_batch: RowCountVsPreviousBatchCheck | None = None
    attributes_present: Literal["error", "warning", "off"] = Field(
        default="warning",
        description="what a batch in which no record carries an Optional attribute's key gets: 'error' fails the "
        "entity, 'warning' lets it go on and says so in its audit row and check, 'off' does not look. (A required "
        "attribute is always checked in every record: a record without it fails the entity.)",
    )


# The options of the generic checks; every other field of QualityChecks is a check an entity declares.
QUALITY_OPTIONS: tuple[str, ...] = ("attributes_present",)
QUALITY_CHECK_NAMES: tuple[str, ...] = tuple(n for n in QualityChecks.model_fields if n not in QUALITY_OPTIONS)


class Entity(_Strict):
    name: Name
    description: str
    system_id: SystemId
    load_type: Literal["full", "delta"]
    landing_entity: Name = Field(description="the system endpoint this entity is extracted from")
    bronze_pattern: BronzePattern
    model: Annotated[str, StringConstraints(pattern=MODEL_REF_PATTERN)] = Field(
        description="'module:Class' of the entity's Pydantic model (ASCII: letters, digits, '_', dots between modules)"
    )
    quality: QualityChecks = Field(
        default_factory=QualityChecks,
        description="checks the quality gate runs on each batch, besides the generic ones",
    )


class Action(_Strict):
    """Work to run after systems load: declared and validated; the pipeline does not run actions yet."""

    name: Name
    description: str
    type: Literal["dbt_build"]
    select: Annotated[str, StringConstraints(min_length=1)] = Field(description="dbt selector")
    after_systems: list[SystemId] = Field(default_factory=list)


class SystemsFile(_Strict):
    systems: list[System]


class EntitiesFile(_Strict):
    entities: list[Entity]


class ActionsFile(_Strict):
    actions: list[Action] = Field(default_factory=list)
