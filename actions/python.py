"""`python`: custom work in a class named by `module:Class` in actions.json.

The interface: the class is instantiated without arguments, and its `run(self, context)` is called once per
event with an `actions.base.ActionContext` (the event, its batch summary, the action's `settings`, the
warehouse URL, an owner-only folder of its own, the secret store, dbt, a logger). It returns a short note
for the audit row (or None) and raises to fail; it must not assume it runs in the data run's process.
See actions/examples/owner_fleet_model.py.
"""

from __future__ import annotations

import dataclasses
import importlib

from actions.base import ActionContext


def load_class(ref: str) -> type:
    module_name, _, class_name = ref.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


class PythonRunner:
    def run(self, context: ActionContext) -> str | None:
        instance = load_class(context.action.class_ref)()
        note = instance.run(dataclasses.replace(context, settings=dict(context.action.settings)))
        return None if note is None else str(note)
