"""The short report a run ends with: the batch, rows per layer, and a taste of gold."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from metadata.catalog import Catalog
from orchestration.pipeline import RunOutcome


def _count(conn: psycopg.Connection, schema: str, table: str, where: str = "") -> int | None:
    exists = conn.execute("select to_regclass(%s)", (f"{schema}.{table}",)).fetchone()[0]
    if exists is None:
        return None
    query = sql.SQL("select count(*) from {}" + where).format(sql.Identifier(schema, table))
    return int(conn.execute(query).fetchone()[0])


def print_summary(url: str, catalog: Catalog, outcome: RunOutcome, *, echo: Callable[[str], None] = print) -> None:
    with psycopg.connect(url) as conn:
        for run in outcome.system_runs:
            echo(f"\n{run.system_id}: batch {run.batch_id} = delivery {run.source_ref} "
                 f"(batch timestamp {run.batch_timestamp:%Y-%m-%d %H:%M %Z})")
        if not outcome.system_runs:
            echo("\nno new batch in this run (nothing new in the sources)")
        echo(f"\n{'entity':<28}{'landing':>10}{'bronze':>10}{'silver':>10}{'current':>10}")
        for entity in catalog.entities.values():
            table = catalog.table(entity)
            cells = [
                _count(conn, "landing", catalog.landing_table(entity)),
                _count(conn, "bronze", table),
                _count(conn, "silver", table),
                _count(conn, "silver", table, " where valid_to is null"),
            ]
            echo(f"{entity.system_id + '.' + entity.name:<28}" + "".join(f"{'-' if c is None else c:>10}" for c in cells))
        if _count(conn, "gold", "owner_vehicles") is not None:
            rows = conn.execute(
                "select owner_id, owner_name, city, vehicles_owned, vehicles_acquired_last_30_days from gold.owner_vehicles"
                " order by vehicles_owned desc, owner_id limit 5"
            ).fetchall()
            echo("\ngold.owner_vehicles (top 5 by vehicles owned):")
            echo(f"  {'owner':>6}  {'name':<22}{'city':<12}{'owned':>6}{'new<30d':>9}")
            for owner_id, name, city, owned, recent in rows:
                echo(f"  {owner_id:>6}  {name:<22}{city:<12}{owned:>6}{recent:>9}")
