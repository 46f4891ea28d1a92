"""Load the declarations, check everything, and hand out one validated `Catalog`.

Every problem names the file, the object and the field, and says what to do; all problems are
collected before anything fails, so one `dataplatform validate` shows the whole list.
"""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Template
from typing import Any

from pydantic import BaseModel, ValidationError

from metadata.columns import POSITION_COLUMN, Column, bronze_columns, reserved_problem
from metadata.deletes import marker_problem
from metadata.entity_model import EntityModelError
from metadata.models import (
    ACTION_MODELS,
    CONNECTION_MODELS,
    CREDENTIAL_FIELDS,
    QUALITY_CHECK_NAMES,
    QUALITY_OPTIONS,
    TEMPLATE_FIELDS,
    Action,
    ActionsFile,
    Channel,
    EmailAction,
    EntitiesFile,
    Entity,
    ExplodePattern,
    PythonAction,
    SmtpSettings,
    System,
    SystemsFile,
    parse_connection,
)
from metadata.naming import entity_table, identifier_problem, landing_table, path_segment_problem
from secret_store.base import SecretStore, secret_keys
from secret_store.choice import platform_secret_store

# System types whose records land as MongoDB Extended JSON (relaxed): see metadata.value_types.untagged_sql.
EXTENDED_JSON_SYSTEM_TYPES = frozenset({"mongodb"})

DEFAULT_FOLDER = Path(__file__).parent / "declarations"


def metadata_folder() -> Path:
    """DATAPLATFORM_METADATA_DIR, or the declarations bundled with the project."""
    return Path(os.environ.get("DATAPLATFORM_METADATA_DIR", DEFAULT_FOLDER))


@dataclass(frozen=True)
class Problem:
    file: str
    object: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.object}: field '{self.field}': {self.message}"


class MetadataError(ValueError):
    """Metadata is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid metadata ({len(problems)} problem(s)):\n{lines}")


@dataclass
class Catalog:
    folder: Path | None  # the declarations folder, or None when they came from the MongoDB registry
    systems: dict[str, System]
    entities: dict[str, Entity]
    actions: list[Action]
    models: dict[str, type[BaseModel]] = field(default_factory=dict)
    columns: dict[str, list[Column]] = field(default_factory=dict)
    origin: str = ""  # where the declarations were read, for messages (a folder, or the registry)
    smtp: SmtpSettings | None = None
    notifications: list[Channel] = field(default_factory=list)

    def entities_of(self, system_id: str) -> list[Entity]:
        return [e for e in self.entities.values() if e.system_id == system_id]

    def landing_table(self, entity: Entity) -> str:
        return landing_table(entity.system_id, entity.landing_entity)

    def is_change_log(self, entity: Entity) -> bool:
        """Whether the entity's endpoint delivers every change of a key (load 'cdc'), so that one batch may hold
        several records of a key (silver applies the last)."""
        system = self.systems.get(entity.system_id)
        spec = system.endpoints().get(entity.landing_entity) if system is not None else None
        return isinstance(spec, dict) and spec.get("load") == "cdc"

    def table(self, entity: Entity) -> str:
        return entity_table(entity.system_id, entity.name)

    def modelled_fields(self, system_id: str, endpoint: str) -> set[str]:
        """Top-level record fields some entity of this endpoint models (a list an explode pattern reads, and the
        field a delete marker reads, count)."""
        fields: set[str] = set()
        for entity in self.entities_of(system_id):
            if entity.landing_entity != endpoint:
                continue
            fields |= {c.path[0] for c in self.columns.get(entity.name, []) if c.source == "record" and c.path}
            if isinstance(entity.bronze_pattern, ExplodePattern):
                fields.add(entity.bronze_pattern.list_path.split(".")[0])
            if entity.deleted_when is not None:
                fields.add(entity.deleted_when.field.split(".")[0])
        return fields

    def primary_key(self, entity: Entity) -> list[str]:
        return [c.name for c in self.columns[entity.name] if c.primary_key]


class _NonFinite(str):
    """What the decoder makes of NaN / Infinity / -Infinity, so that `_unclean` can name where it stood."""


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it held more than once: (key, first value, later value)."""

    duplicates: list[tuple[str, Any, Any]]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result, result.duplicates = _Object(), []
    for key, value in pairs:
        if key in result:
            result.duplicates.append((key, result[key], value))
        result[key] = value
    return result


# Plain json.loads silently keeps the last of two equal keys and reads NaN / Infinity as numbers: a
# declaration must mean one thing, so both are kept visible here and refused by `_unclean`.
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_NonFinite)


def _walk(value: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every value of a decoded file with its location, in the file's order (keys before their values)."""
    yield loc, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, (*loc, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, (*loc, index))


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, _NonFinite) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _unclean(file: str, data: Any, problems: list[Problem]) -> bool:
    """Report every duplicated key and non-finite number in `data`, each at its object and field."""
    found = False
    for loc, value in _walk(data):
        label, rest = _object_label(data, loc)
        if isinstance(value, _NonFinite):
            field = ".".join(map(str, rest)) or "-"
            problems.append(Problem(file, label, field, f"{value} is not a JSON number; write a finite number"))
            found = True
        for key, first, later in value.duplicates if isinstance(value, _Object) else ():
            field = ".".join(map(str, (*rest, key)))
            problems.append(Problem(file, label, field, f"key {key!r} appears twice in the same object (first "
                                    f"{_short(first)}, then {_short(later)}); keep one"))
            found = True
    return found


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError, problems: list[Problem]) -> None:
    """Name the first byte that is not UTF-8, and the object and field it is in when the rest of the
    file is readable (the byte then sits in a string, kept as an escaped surrogate)."""
    line = data.count(b"\n", 0, err.start) + 1
    message = (f"not valid UTF-8 at byte offset {err.start} (line {line}, byte 0x{data[err.start]:02x}); "
               "save the file as UTF-8")
    label, field = "(file)", "-"
    try:
        tree = json.loads(data.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        tree = None
    for loc, value in _walk(tree) if tree is not None else ():
        keys = [k for k in value if any(0xDC80 <= ord(c) <= 0xDCFF for c in k)] if isinstance(value, dict) else []
        if keys or (isinstance(value, str) and any(0xDC80 <= ord(c) <= 0xDCFF for c in value)):
            label, rest = _object_label(tree, (*loc, *keys[:1]))
            field = ".".join(str(p).encode("utf-8", "surrogateescape").decode("utf-8", "replace") for p in rest)
            break
    problems.append(Problem(path.name, label, field or "-", message))


def _read(path: Path, problems: list[Problem]) -> Any:
    """The decoded file, or None after adding its problems: missing, not UTF-8, not JSON, or JSON that
    does not say one thing (a key twice in an object, NaN or Infinity)."""
    if not path.exists():
        problems.append(Problem(path.name, "(file)", "-", f"file not found at {path}; create it"))
        return None
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        _not_utf8(path, data, err, problems)
        return None
    try:
        decoded = _DECODER.decode(text)
    except json.JSONDecodeError as err:
        problems.append(
            Problem(path.name, "(file)", "-", f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}")
        )
        return None
    except RecursionError:
        problems.append(Problem(path.name, "(file)", "-", "nested too deeply to read; declarations nest a few levels"))
        return None
    return None if _unclean(path.name, decoded, problems) else decoded


def _object_label(data: Any, loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """'systems[0] (id=TST01)' and the rest of the location, for a Pydantic error location."""
    if len(loc) >= 2 and isinstance(loc[1], int):
        item = data.get(loc[0], [])[loc[1]] if isinstance(data, dict) else None
        ident = item.get("id") or item.get("name") if isinstance(item, dict) else None
        label = f"{loc[0]}[{loc[1]}]" + (f" ({ident})" if ident else "")
        return label, loc[2:]
    return "(file)", loc


def _validate(model: type[BaseModel], file: str, data: Any, problems: list[Problem]) -> Any:
    """`data` (a decoded declaration file) as `model`, or None after adding its problems."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            label, rest = _object_label(data, tuple(e["loc"]))
            # Discriminated unions add the tag to the location; it is noise for a reader.
            fields = [str(p) for p in rest if p not in _UNION_TAGS]
            # A credential written in by mistake is not repeated in the message.
            shown = not isinstance(e["input"], (dict, list)) and not set(fields) & set(CREDENTIAL_FIELDS)
            value = f" (got {e['input']!r})" if shown else ""
            message = _hint(fields, e["type"]) + e["msg"] + value
            if e["type"] in ("union_tag_invalid", "union_tag_not_found") and file == "actions.json":
                fields, message = [*fields, "type"], _tag_hint(file, e)
            problems.append(Problem(file, label, ".".join(fields) or "-", message))
        return None


_UNION_TAGS = ("copy", "flatten", "explode", *ACTION_MODELS, "slack", "email")


def _tag_hint(file: str, error: Any) -> str:
    """An unknown or missing `type` of a discriminated union: say which types exist."""
    known = error.get("ctx", {}).get("expected_tags", "")
    given = error.get("ctx", {}).get("tag")
    what = "notification channel type" if error["loc"][0] == "notifications" else "action type"
    if error["type"] == "union_tag_not_found":
        return f"give the {what}; known: {known}"
    return f"unknown {what} {given!r}; known: {known}"


def _hint(fields: list[str], error_type: str) -> str:
    """What to do, where Pydantic's own message does not say it."""
    if error_type == "extra_forbidden" and len(fields) == 2 and fields[0] == "quality":
        return (f"unknown quality check {fields[1]!r}; known checks: {', '.join(QUALITY_CHECK_NAMES)}; "
                f"options: {', '.join(QUALITY_OPTIONS)}: ")
    return ""


def _duplicates(names: list[str]) -> list[str]:
    return [n for n, count in Counter(names).items() if count > 1]


def _import_model(ref: str) -> type[BaseModel]:
    module_name, _, class_name = ref.partition(":")
    model = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{ref} is not a Pydantic model class")
    return model


# Where a connection model has a discriminated union (`auth`, an endpoint's `paginator`), Pydantic puts the
# chosen type's tag into the error location: noise for a reader, who wrote `auth.token`, not `auth.bearer.token`.
_TAGGED_UNIONS = (("auth",), ("endpoints", None, "paginator"))


def _connection_loc(loc: tuple[Any, ...]) -> list[Any]:
    for prefix in _TAGGED_UNIONS:
        n = len(prefix)
        if len(loc) > n and all(p is None or p == part for p, part in zip(prefix, loc, strict=False)):
            return [*loc[:n], *loc[n + 1:]]
    return list(loc)


def _check_systems(systems: list[System], store: SecretStore, problems: list[Problem]) -> None:
    f = "systems.json"
    for dup in _duplicates([s.id for s in systems]):
        problems.append(Problem(f, f"system {dup}", "id", "declared more than once; ids must be unique"))
    for s in systems:
        obj = f"system {s.id}"
        if s.type not in CONNECTION_MODELS:
            known = ", ".join(sorted(CONNECTION_MODELS))
            problems.append(Problem(f, obj, "type", f"unknown system type {s.type!r}; known types: {known}"))
            continue
        try:
            parse_connection(s.type, s.connection)
        except ValidationError as err:
            for e in err.errors():
                where = ".".join(["connection", *map(str, _connection_loc(e["loc"][1:]))])  # [0] is the type tag
                # A value under `auth` (rest_api) or a database's url, user or password (mongodb, sql_database) may
                # be a credential written where its secret reference belongs: never echoed.
                shown = isinstance(e["input"], (str, int, float, bool)) and "auth" not in e["loc"][1:2] and not (
                    set(map(str, e["loc"][1:])) & {"url", "user", "password"})
                value = f" (got {e['input']!r})" if shown else ""
                problems.append(Problem(f, obj, where, e["msg"] + value))
        for key in secret_keys(s.connection):
            why = store.key_problem(key)
            if why:
                problems.append(Problem(f, obj, "connection", why))
            elif not store.has(key):
                problems.append(Problem(f, obj, "connection", f"secret {key!r} is missing: {store.describe(key)}"))
        for name, ref in ((n, getattr(s.webhook, n)) for n in ("token", "hmac_secret") if s.webhook):
            if ref is not None and not store.has(ref.key):
                problems.append(Problem(f, obj, f"webhook.{name}",
                                        f"secret {ref.key!r} is missing: {store.describe(ref.key)}"))
        for endpoint in s.endpoints():
            why = identifier_problem(landing_table(s.id, endpoint))
            if why:
                problems.append(Problem(f, obj, f"connection.endpoints.{endpoint}", f"landing table name {why}"))


def _check_entities(catalog: Catalog, problems: list[Problem]) -> None:
    f = "entities.json"
    entities = list(catalog.entities.values())
    for e in entities:
        obj = f"entity {e.name}"
        system = catalog.systems.get(e.system_id)
        if system is None:
            problems.append(Problem(f, obj, "system_id", f"unknown system {e.system_id!r}; declare it in systems.json"))
            continue
        if e.landing_entity not in system.endpoints():
            known = ", ".join(system.endpoints()) or "none"
            message = f"{e.landing_entity!r} is not an endpoint of {e.system_id} (has: {known})"
            problems.append(Problem(f, obj, "landing_entity", message))
        why = identifier_problem(catalog.table(e))
        if why:
            problems.append(Problem(f, obj, "name", f"table name {why}"))
        try:
            catalog.models[e.name] = _import_model(e.model)
        except Exception as err:  # importing the model runs its module: any error there is a metadata problem
            problems.append(Problem(f, obj, "model", f"cannot load {e.model!r}: {err}"))
    tables = [catalog.table(e) for e in entities]
    for dup in _duplicates(tables):
        problems.append(Problem(f, f"table {dup}", "name", "two entities map to the same table name; rename one"))
    for e in entities:
        if e.name in catalog.models:
            _derive_columns(catalog, e, problems)


def _derive_columns(catalog: Catalog, e: Entity, problems: list[Problem]) -> None:
    f, obj = "entities.json", f"entity {e.name}"
    pattern, parent_model, parent_pattern = e.bronze_pattern, None, None
    if isinstance(pattern, ExplodePattern):
        parent = catalog.entities.get(pattern.parent_entity)
        if parent is None or parent.system_id != e.system_id or parent.landing_entity != e.landing_entity:
            problems.append(
                Problem(f, obj, "bronze_pattern.parent_entity",
                        f"{pattern.parent_entity!r} must be an entity of the same system and landing entity")
            )
            return
        parent_model, parent_pattern = catalog.models.get(parent.name), parent.bronze_pattern
        if parent_model is None:
            return
    try:
        columns = bronze_columns(
            pattern, catalog.models[e.name], parent_model=parent_model, parent_pattern=parent_pattern
        )
    except EntityModelError as err:
        problems.append(Problem(f, obj, "model", f"{e.model}: {err}"))
        return
    if not any(c.primary_key for c in columns):
        problems.append(Problem(f, obj, "model", f"{e.model} declares no primary key; mark one field Key[...]"))
    generates_position = any(c.source == "position" for c in columns)
    reserved: set[str] = set()
    for c in columns:
        where = f"model.{'.'.join(c.path)}"
        if c.source == "position":
            continue
        if isinstance(pattern, ExplodePattern) and c.source == "record":
            # The parent's key columns: checked (and reported) on the parent, except a clash with `position`.
            if generates_position and c.name == POSITION_COLUMN:
                why = reserved_problem(c.name, generates_position=True)
                problems.append(Problem(f, obj, where, f"the parent's key column {why}"))
                reserved.add(c.name)
            continue
        why = next((w for w in map(path_segment_problem, c.path) if w), None)
        if why:
            problems.append(Problem(f, obj, where, f"field alias or name {why}"))
            continue
        why = identifier_problem(c.name)
        if why:
            problems.append(Problem(f, obj, where, f"column name {why}"))
            continue
        why = reserved_problem(c.name, generates_position=generates_position)
        if why:
            problems.append(Problem(f, obj, where, f"column name {why}"))
            reserved.add(c.name)  # its clash with the platform's column is that problem, not a second one
    for dup in _duplicates([c.name for c in columns if c.name not in reserved]):
        problems.append(Problem(f, obj, "model", f"two attributes map to the column {dup!r}; rename one"))
    system = catalog.systems.get(e.system_id)
    if system is not None and system.type in EXTENDED_JSON_SYSTEM_TYPES:
        # Its records are MongoDB Extended JSON: a scalar column reads a tagged value ({"$date": ...}) as its value.
        columns = [replace(c, extended_json=True) if c.pg_type != "jsonb" and c.source != "position" else c
                   for c in columns]
    catalog.columns[e.name] = columns
    if e.deleted_when is not None:
        _check_delete_marker(e, columns, problems)


def _check_delete_marker(e: Entity, columns: list[Column], problems: list[Problem]) -> None:
    """A delete marker is declared on records that carry the entity's key, and can match its field."""
    f, obj = "entities.json", f"entity {e.name}"
    assert e.deleted_when is not None
    if isinstance(e.bronze_pattern, ExplodePattern):
        problems.append(Problem(f, obj, "deleted_when", (
            "not supported on an explode entity: a delete record carries its parent's key, not the items' (a CDC "
            f"delete has no list); declare it on the parent entity {e.bronze_pattern.parent_entity!r}")))
        return
    found = marker_problem(e.deleted_when, columns)
    if found:
        problems.append(Problem(f, obj, f"deleted_when.{found[0]}", found[1]))


def _check_trigger(catalog: Catalog, obj: str, where: str, system: str, entity: str | None, layer: str,
                   problems: list[Problem]) -> None:
    f = "actions.json"
    if system not in catalog.systems:
        problems.append(Problem(f, obj, f"{where}.system", f"unknown system {system!r}; declare it in systems.json"))
        return
    if entity is None:
        return
    if layer == "landing":  # landing's entity rows are the system's endpoints
        known = list(catalog.systems[system].endpoints())
        if entity not in known:
            problems.append(Problem(f, obj, f"{where}.entity", f"{entity!r} is not an endpoint of {system} (landing"
                                    f" reports endpoints; has: {', '.join(known) or 'none'})"))
        return
    known = [e.name for e in catalog.entities_of(system)]
    if entity not in known:
        problems.append(Problem(f, obj, f"{where}.entity",
                                f"unknown entity {entity!r} of {system}; known: {', '.join(known) or 'none'}"))


def _check_actions(catalog: Catalog, store: SecretStore, problems: list[Problem]) -> None:
    f = "actions.json"
    for dup in _duplicates([a.name for a in catalog.actions]):
        problems.append(Problem(f, f"action {dup}", "name", "declared more than once; names must be unique"))
    needs_smtp = [f"action {a.name}" for a in catalog.actions if isinstance(a, EmailAction)]
    needs_smtp += [f"notifications[{i}]" for i, c in enumerate(catalog.notifications) if c.type == "email"]
    if catalog.smtp is None:
        for obj in needs_smtp:
            problems.append(Problem(f, obj, "type", "sends email, but the file declares no `smtp` settings; add"
                                    " {\"smtp\": {\"host\": ..., \"port\": 587, \"sender\": ...}}"))
    for a in catalog.actions:
        obj = f"action {a.name}"
        for i, t in enumerate(a.after):
            _check_trigger(catalog, obj, f"after[{i}]", t.system, t.entity, t.layer, problems)
        for system_id in a.after_systems:
            if system_id not in catalog.systems:
                problems.append(Problem(f, obj, "after_systems", f"unknown system {system_id!r}"))
        if isinstance(a, EmailAction):
            for where in ("subject", "body"):
                unknown = _unknown_template_names(getattr(a, where))
                if unknown:
                    problems.append(Problem(f, obj, where, f"unknown template name(s) {', '.join(unknown)}; known:"
                                            f" {', '.join(TEMPLATE_FIELDS)}"))
        if isinstance(a, PythonAction):
            try:
                _import_action_class(a.class_ref)
            except Exception as err:  # importing the class runs its module: any error there is a metadata problem
                problems.append(Problem(f, obj, "class", f"cannot load {a.class_ref!r}: {err}"))
    secrets = [("smtp", key) for key in secret_keys(catalog.smtp.model_dump() if catalog.smtp else {})]
    secrets += [(f"notifications[{i}]", key) for i, c in enumerate(catalog.notifications)
                for key in secret_keys(c.model_dump())]
    for obj, key in secrets:
        if not store.has(key):
            problems.append(Problem(f, obj, "-", f"secret {key!r} is missing: {store.describe(key)}"))


def _unknown_template_names(template: str) -> list[str]:
    parsed = Template(template)
    if not parsed.is_valid():
        return ["(a '$' not followed by a name: write $name or ${name}, and $$ for '$')"]
    return [name for name in parsed.get_identifiers() if name not in TEMPLATE_FIELDS]


def _import_action_class(ref: str) -> type:
    module_name, _, class_name = ref.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and callable(getattr(cls, "run", None))):
        raise TypeError(f"{ref} is not a class with a run(context) method")
    return cls


DECLARATION_FILES: dict[str, type[BaseModel]] = {
    "systems.json": SystemsFile, "entities.json": EntitiesFile, "actions.json": ActionsFile}


def read_declarations(folder: Path | None = None) -> dict[str, Any]:
    """The decoded declaration files of `folder` ({"systems.json": {...}, ...}) as plain JSON, or raise
    MetadataError listing every file that cannot be read. They are not checked beyond that:
    `catalog_from_declarations` does it."""
    folder = folder or metadata_folder()
    problems: list[Problem] = []
    decoded = {name: _read(folder / name, problems) for name in DECLARATION_FILES}
    if problems:
        raise MetadataError(problems)
    return json.loads(json.dumps(decoded))  # plain dicts: the decoder's bookkeeping types stay here


def catalog_from_declarations(declarations: dict[str, Any], *, folder: Path | None = None, origin: str = "",
                              secrets: SecretStore | None = None) -> Catalog:
    """Check decoded declarations (from files or the MongoDB registry: one validation for both) and build
    the Catalog; raise MetadataError listing every problem."""
    problems: list[Problem] = []
    for name in DECLARATION_FILES:
        if name not in declarations:
            problems.append(Problem(name, "(file)", "-", f"missing from {origin or 'the declarations'}; deploy it"))
    return _build({name: declarations.get(name) for name in DECLARATION_FILES}, problems,
                  folder=folder, origin=origin, secrets=secrets)


def load_catalog(folder: Path | None = None, *, secrets: SecretStore | None = None) -> Catalog:
    """Read and check the declarations in `folder`; raise MetadataError listing every problem."""
    folder = folder or metadata_folder()
    problems: list[Problem] = []
    decoded = {name: _read(folder / name, problems) for name in DECLARATION_FILES}
    return _build(decoded, problems, folder=folder, origin=str(folder), secrets=secrets)


def _build(decoded: dict[str, Any], problems: list[Problem], *, folder: Path | None, origin: str,
           secrets: SecretStore | None) -> Catalog:
    """Validate every readable file (None: unreadable, its problem is in `problems` already), then check
    them against each other and the secret store."""
    parsed = {name: None if data is None else _validate(model, name, data, problems)
              for (name, model), data in zip(DECLARATION_FILES.items(), decoded.values(), strict=True)}
    if problems:
        raise MetadataError(problems)
    systems_file, entities_file, actions_file = parsed.values()
    assert systems_file and entities_file and actions_file
    store = secrets or platform_secret_store()
    _check_systems(systems_file.systems, store, problems)
    for dup in _duplicates([e.name for e in entities_file.entities]):
        problems.append(
            Problem("entities.json", f"entity {dup}", "name", "declared more than once; names must be unique")
        )
    catalog = Catalog(
        folder=folder,
        systems={s.id: s for s in systems_file.systems},
        entities={e.name: e for e in entities_file.entities},
        actions=actions_file.actions,
        origin=origin,
        smtp=actions_file.smtp,
        notifications=actions_file.notifications,
    )
    _check_entities(catalog, problems)
    _check_actions(catalog, store, problems)
    if problems:
        raise MetadataError(problems)
    return catalog
