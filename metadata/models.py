"""Pydantic models of the three declaration files: systems.json, entities.json, actions.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

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


class System(_Strict):
    id: SystemId
    name: Annotated[str, StringConstraints(min_length=1)]
    description: str
    type: str
    connection: dict[str, Any]

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


LAYERS: tuple[str, ...] = ("landing", "quality", "bronze", "silver", "gold")
Layer = Literal["landing", "quality", "bronze", "silver", "gold"]


class Trigger(_Strict):
    """An event an action follows: a system's layer finished (no `entity`), or an entity finished a layer
    (for `landing`, the entity is the system's endpoint)."""

    system: SystemId
    entity: Name | None = None
    layer: Layer = "gold"


class SmtpSettings(_Strict):
    """The one mail server that email actions and email notifications send through."""

    host: SecretRef | str
    port: Annotated[int, Field(gt=0, lt=65536)] = 587
    tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="'starttls' (port 587), 'ssl' (implicit TLS, port 465) or 'none'")
    username: SecretRef | str | None = None
    password: SecretRef | None = Field(default=None, description="a secret reference, never the password itself")
    sender: Annotated[str, StringConstraints(min_length=3)] = Field(description="the From: address")


class SlackChannel(_Strict):
    """A Slack-compatible incoming webhook: the URL is itself the credential, so it must be a secret."""

    type: Literal["slack"]
    webhook_url: SecretRef


class EmailChannel(_Strict):
    """Email to the operator, through the file's `smtp` settings."""

    type: Literal["email"]
    to: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)


Channel = Annotated[SlackChannel | EmailChannel, Field(discriminator="type")]


class _ActionBase(_Strict):
    name: Name
    description: str
    after: list[Trigger] = Field(default_factory=list, description="the events this action follows")
    after_systems: list[SystemId] = Field(
        default_factory=list, description="shorthand: after each of these systems' gold layer")
    on: Literal["success", "failure"] = Field(
        default="success", description="'success': when a followed event succeeded; 'failure': when it failed (with"
        " no `after`, any failure)")

    def triggers(self) -> list[Trigger]:
        return [*self.after, *(Trigger(system=s, layer="gold") for s in self.after_systems)]

    @model_validator(mode="after")
    def _follows_something(self) -> _ActionBase:
        if self.on == "success" and not self.triggers():
            raise ValueError("give `after` (or `after_systems`): which events this action follows")
        return self


class DbtBuildAction(_ActionBase):
    """`dbt build --select <select>` on the platform's project, as the platform runs dbt."""

    type: Literal["dbt_build"]
    select: Annotated[str, StringConstraints(min_length=1)] = Field(description="dbt selector")


# The names an email template may use: an event's fields (audit/events.py Event), its batch's summary
# (audit.events.batch_summary) and the action's name. tests/unit/test_actions_metadata.py keeps them in step.
TEMPLATE_FIELDS: tuple[str, ...] = (
    "event_id", "kind", "status", "system_id", "entity", "layer", "batch_id", "system_run_id", "dagster_run_id",
    "records_in", "inserted", "updated", "deleted", "entities_succeeded", "entities_failed", "entities_skipped",
    "message", "created_at", "source_ref", "batch_timestamp", "batch_status", "batch_message", "batch_summary",
    "action",
)


class EmailAction(_ActionBase):
    """A mail through the file's `smtp` settings; subject and body are string.Template texts over the
    event's fields and its batch's summary (`$system_id`, `$batch_id`, `$batch_summary`, ...)."""

    type: Literal["email"]
    to: list[Annotated[str, StringConstraints(min_length=3)]] = Field(min_length=1)
    subject: Annotated[str, StringConstraints(min_length=1)]
    body: Annotated[str, StringConstraints(min_length=1)]


class PythonAction(_ActionBase):
    """Custom work: a class `module:Class` whose `run(context)` is called (see actions/python.py)."""

    type: Literal["python"]
    class_ref: Annotated[str, StringConstraints(pattern=MODEL_REF_PATTERN)] = Field(
        alias="class", description="'module:Class' of a class with a `run(context)` method")
    settings: dict[str, Any] = Field(default_factory=dict, description="handed to the class as context.settings")


# An action's settings, by its `type` (the discriminator); the runner of each type is registered in actions/.
Action = Annotated[DbtBuildAction | EmailAction | PythonAction, Field(discriminator="type")]
ACTION_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(get_args(Action)[0])
}


class SystemsFile(_Strict):
    systems: list[System]


class EntitiesFile(_Strict):
    entities: list[Entity]


class ActionsFile(_Strict):
    smtp: SmtpSettings | None = Field(default=None, description="mail server of email actions and notifications")
    notifications: list[Channel] = Field(default_factory=list, description="where failures are notified")
    actions: list[Action] = Field(default_factory=list)
