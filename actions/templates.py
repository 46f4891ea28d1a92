"""Subject and body templates of email actions: `string.Template` (`$batch_id`, `${system_id}`) over a fixed
set of names (metadata.models.TEMPLATE_FIELDS), never code: `validate` refuses any other name."""

from __future__ import annotations

from collections.abc import Mapping
from string import Template


def render(template: str, fields: Mapping[str, str]) -> str:
    return Template(template).substitute(fields)
