"""A `python` action that retrains a small model on gold after each batch: how many vehicles an owner holds,
from their city and how many vehicles they acquired in the last 30 days (gold.owner_vehicles).

Declare it in actions.json:

    {"name": "owner_fleet_model", "description": "...", "type": "python",
     "class": "actions.examples.owner_fleet_model:OwnerFleetModel",
     "after": [{"system": "TST01", "layer": "gold"}], "settings": {"test_share": 0.25}}

It writes the fitted model to its owner-only folder under the state folder
(`$DATAPLATFORM_HOME/actions/<action>/owner_fleet_model-batch<B>.joblib`, mode 0600) and one row to
`audit.model_training`: the batch it was trained on, the rows, and its metrics (R², mean absolute error on a
held-out share, and on the training rows).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from actions.base import ActionContext
from warehouse.session import connect

MODEL = "owner_fleet_model"
QUERY = "select city, vehicles_acquired_last_30_days, vehicles_owned from gold.owner_vehicles order by owner_id"
MIN_ROWS = 8  # below this no held-out share is meaningful: the action fails, saying so


class OwnerFleetModel:
    def run(self, context: ActionContext) -> str:
        # scikit-learn is imported here, not at the top: validating actions.json imports this module in every
        # CLI command and Dagster process, which should not pay for (or hold the memory of) scikit-learn.
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import Ridge
        from sklearn.metrics import mean_absolute_error, r2_score
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder

        test_share = float(context.settings.get("test_share", 0.25))
        with connect(context.warehouse_url) as conn:
            rows = conn.execute(QUERY).fetchall()
        if len(rows) < MIN_ROWS:
            raise ValueError(f"gold.owner_vehicles holds {len(rows)} owner(s); {MODEL} needs at least {MIN_ROWS}")
        features = [[city or "", int(recent)] for city, recent, _ in rows]
        target = [int(owned) for *_, owned in rows]
        x_train, x_test, y_train, y_test = train_test_split(features, target, test_size=test_share, random_state=0)
        model = Pipeline([
            ("encode", ColumnTransformer([("city", OneHotEncoder(handle_unknown="ignore"), [0])],
                                         remainder="passthrough")),
            ("ridge", Ridge(alpha=1.0)),
        ])
        model.fit(x_train, y_train)
        predicted, fitted = model.predict(x_test), model.predict(x_train)
        metrics = {
            "r2_test": round(float(r2_score(y_test, predicted)), 6) if len(y_test) > 1 else None,
            "mae_test": round(float(mean_absolute_error(y_test, predicted)), 6),
            "r2_train": round(float(r2_score(y_train, fitted)), 6),
            "mae_train": round(float(mean_absolute_error(y_train, fitted)), 6),
            "rows_train": len(y_train),
            "rows_test": len(y_test),
        }
        path = _save(model, context.state_dir / f"{MODEL}-batch{context.event.batch_id}.joblib")
        with connect(context.warehouse_url, autocommit=True) as conn:
            conn.execute(
                "insert into audit.model_training (action, event_id, batch_id, model, model_path, rows_trained,"
                " metrics) values (%s, %s, %s, %s, %s, %s, %s) on conflict (action, event_id) do nothing",
                (context.action.name, context.event.event_id, context.event.batch_id, MODEL, str(path), len(rows),
                 json.dumps(metrics)),
            )
        context.log.info("%s trained on batch %s: %s", MODEL, context.event.batch_id, metrics)
        return (f"{MODEL} trained on {len(rows)} owners of batch {context.event.batch_id}:"
                f" mae_test {metrics['mae_test']}")


def _save(model: Any, path: Path) -> Path:
    """Owner-only from its first byte: the file is created 0600, then written."""
    import joblib

    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        joblib.dump(model, handle)
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return path
