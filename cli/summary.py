"""The short report a run ends with: the batch, what each layer did with it, and a taste of gold."""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from audit.entities import layer_counts, silver_versions
from metadata.catalog import Catalog
from orchestration.execute import RunOutcome
from warehouse.session import connect


def print_summary(url: str, catalog: Catalog, outcome: RunOutcome, *, echo: Callable[[str], None] = print) -> None:
    with connect(url) as conn:
        if not outcome.system_runs:
            echo("\nno new batch in this run: the sources hold nothing new (use --force to re-run the last batch)")
        for run in outcome.system_runs:
            echo(f"\n{run.system_id}: batch {run.batch_id} = delivery {run.source_ref} "
                 f"(batch timestamp {run.batch_timestamp:%Y-%m-%d %H:%M %Z})")
            counts = layer_counts(conn, run.batch_id, outcome.dagster_run_id)
            echo(f"  {'entity':<18}{'landed':>8}{'bronze':>8}{'silver +new':>13}{'~changed':>10}{'-deleted':>10}"
                 f"{'versions':>10}{'current':>9}")
            for entity in catalog.entities_of(run.system_id):
                landed = counts.get(("landing", entity.landing_entity), (0, 0, 0, 0))[1]
                bronze = counts.get(("bronze", entity.name), (0, 0, 0, 0))[1]
                _, new, changed, deleted = counts.get(("silver", entity.name), (0, 0, 0, 0))
                table = catalog.table(entity)
                relation = sql.Identifier("silver", table)
                exists = conn.execute("select to_regclass(%s)", (relation.as_string(conn),)).fetchone()[0]
                versions, current = silver_versions(conn, table) if exists else (0, 0)
                echo(f"  {entity.name:<18}{landed:>8}{bronze:>8}{new:>13}{changed:>10}{deleted:>10}"
                     f"{versions:>10}{current:>9}")
        if conn.execute("select to_regclass('gold.owner_vehicles')").fetchone()[0]:
            rows = conn.execute(
                "select owner_id, owner_name, city, vehicles_owned, vehicles_acquired_last_30_days"
                " from gold.owner_vehicles"
                " order by vehicles_owned desc, owner_id limit 5"
            ).fetchall()
            echo("\ngold.owner_vehicles (top 5 by vehicles owned):")
            echo(f"  {'owner':>6}  {'name':<22}{'city':<12}{'owned':>6}{'new<30d':>9}")
            for owner_id, name, city, owned, recent in rows:
                echo(f"  {owner_id:>6}  {name:<22}{city:<12}{owned:>6}{recent:>9}")
