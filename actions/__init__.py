"""Actions, by type: the runner asks `runner_for(action.type)`, never for a type by name (as system types
select connectors in ingestion/connectors). A new type adds its model to metadata/models.py and its runner here."""

from __future__ import annotations

from actions.base import ActionContext, ActionRunner
from actions.dbt_build import DbtBuildRunner
from actions.mail import EmailRunner
from actions.python import PythonRunner

ACTIONS: dict[str, ActionRunner] = {"dbt_build": DbtBuildRunner(), "email": EmailRunner(), "python": PythonRunner()}

__all__ = ["ACTIONS", "ActionContext", "ActionRunner", "runner_for"]


def runner_for(action_type: str) -> ActionRunner:
    try:
        return ACTIONS[action_type]
    except KeyError:
        known = ", ".join(sorted(ACTIONS))
        raise ValueError(f"no runner for action type {action_type!r}; known types: {known}") from None
