"""`dbt_build`: build a dbt selection on the platform's project (through the same dbt the data runs use)."""

from __future__ import annotations

from actions.base import ActionContext


class DbtBuildRunner:
    def run(self, context: ActionContext) -> str | None:
        select = context.action.select
        context.log.info("dbt build --select %s", select)
        context.run_dbt(["build", "--select", select, "--exclude", "resource_type:unit_test"])
        return f"dbt build --select {select}"
