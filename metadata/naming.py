"""How metadata names become PostgreSQL identifiers.

One place decides every table and column name, so the landing writer, the dbt generator and the
validator can never disagree about what a name maps to.
"""

from __future__ import annotations

import re

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are silently truncated
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9_]+")

# What one key of a JSON path may be (a field's alias or name in an entity model, a segment of an explode
# pattern's `list_path`): words of ASCII letters, digits and '_', joined by single '-' or single spaces,
# at most 128 characters ('Owner-ID', 'First Name', '1st'). Every path reaches SQL escaped
# (metadata.columns.json_path_literal) whatever it holds; this rule is the second line: a key that could only
# be meant to break out of a literal or a template
# (quotes, ';', comment markers, '$$', braces, backslashes, control characters, look-alike letters from
# other alphabets) is refused by `validate` before anything reaches the warehouse.
PATH_SEGMENT_PATTERN = r"[A-Za-z0-9_]+([ -][A-Za-z0-9_]+)*"
MAX_PATH_SEGMENT_CHARS = 128
_PATH_SEGMENT = re.compile(PATH_SEGMENT_PATTERN)
PATH_SEGMENT_RULE = (
    "a JSON key here may hold only ASCII letters, digits and '_', in words joined by a single '-' or space, "
    f"at most {MAX_PATH_SEGMENT_CHARS} characters"
)


def to_identifier(name: str) -> str:
    """Lower-case `name` and replace every run of other characters by one underscore."""
    return _NOT_IDENTIFIER.sub("_", name.strip().lower())


def identifier_problem(identifier: str) -> str | None:
    """Why `identifier` cannot be used as a PostgreSQL name, or None when it can."""
    if not identifier or identifier == "_":
        return "maps to an empty name"
    if identifier[0].isdigit():
        return f"maps to {identifier!r}, which starts with a digit"
    size = len(identifier.encode())
    if size > MAX_IDENTIFIER_BYTES:
        return f"maps to {identifier!r}, {size} bytes long; PostgreSQL allows {MAX_IDENTIFIER_BYTES}"
    return None


def path_segment_problem(segment: str) -> str | None:
    """Why `segment` cannot be a key of a JSON path the platform reads, or None when it can."""
    if _PATH_SEGMENT.fullmatch(segment) and len(segment) <= MAX_PATH_SEGMENT_CHARS:
        return None
    return f"{segment!r} is not allowed: {PATH_SEGMENT_RULE}"


def landing_table(system_id: str, endpoint: str) -> str:
    """Table in schema `landing` that holds what one source endpoint returned."""
    return to_identifier(f"{system_id}_{endpoint}")


def entity_table(system_id: str, entity: str) -> str:
    """Table name of an entity in `bronze` and `silver` (the schema tells the layer)."""
    return to_identifier(f"{system_id}_{entity}")


def dbt_model_name(layer: str, system_id: str, entity: str) -> str:
    """dbt model names are unique across layers, so the layer prefixes the table name."""
    return f"{layer}__{entity_table(system_id, entity)}"
