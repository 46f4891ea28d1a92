"""Reporting the quality gate's word on one entity's batch: GX's results folded into a verdict, with
a message that names every failed expectation, what was observed and where (landing record numbers),
so the audit row alone tells a reader what to fix in the source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metadata.models import Entity
from quality.plan import ITEM_NO, RECORD_NO, RECORDS, ROWS, EntityPlan, PlannedExpectation
from secret_store.redact import redact

MAX_EXAMPLES = 5  # record numbers / values quoted in a message


@dataclass(frozen=True)
class ExpectationOutcome:
    key: str
    label: str
    expectation_type: str
    success: bool
    observed: dict[str, Any]  # the observed values GX reported (counts, kinds, examples, row count)
    summary: str  # what was seen; for a failure, the sentence that goes into the audit message
    severity: str = "error"  # "warning": a failure is reported, the entity goes on


@dataclass(frozen=True)
class EntityVerdict:
    entity: str
    batch_id: int
    passed: bool
    rows: int  # entity rows in the batch (records, or items of an exploded list)
    outcomes: list[ExpectationOutcome]
    notes: list[str]
    message: str | None  # None when passed without warnings; else every failed expectation with what was observed
    seconds: float = 0.0

    @property
    def failed(self) -> list[ExpectationOutcome]:
        """The failed expectations that stop the entity."""
        return [o for o in self.outcomes if not o.success and o.severity != "warning"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """The failed expectations that are only reported."""
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]


def _examples(values: list[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_EXAMPLES])
    return shown + (", ..." if len(values) > MAX_EXAMPLES else "")


def _where(result: dict[str, Any], unit: str) -> str:
    """'landing records #3, #17' (or 'record #3 item 2') from GX's partial unexpected index list."""
    rows = result.get("partial_unexpected_index_list") or []
    places = []
    for row in rows:
        if not isinstance(row, dict) or RECORD_NO not in row:
            continue
        place = f"#{row[RECORD_NO]}" + (f" item {row[ITEM_NO]}" if row.get(ITEM_NO) is not None else "")
        if place not in places:
            places.append(place)
    if not places:
        return ""
    noun = "landing record" if len(places) == 1 else "landing records"
    return f" ({noun} {_examples(places)})"


def _values(result: dict[str, Any], column: str | None) -> dict[str, str]:
    """'#3' (or '#3 item 2') -> the value's text, from GX's partial unexpected index list."""
    found: dict[str, str] = {}
    for row in result.get("partial_unexpected_index_list") or []:
        if column and isinstance(row, dict) and row.get(column) is not None and RECORD_NO in row:
            place = f"#{row[RECORD_NO]}" + (f" item {row[ITEM_NO]}" if row.get(ITEM_NO) is not None else "")
            found.setdefault(place, str(row[column]))
    return found


def _presence_rows(result: dict[str, Any]) -> tuple[int, int]:
    """(rows a presence check judges, delete records it leaves out). A delete record without the attribute has
    no kind (SQL null: quality.plan), which GX counts as missing and never as unexpected; it neither carries
    the key nor counts against it."""
    total, deletes = result.get("element_count") or 0, result.get("missing_count") or 0
    return total - deletes, deletes


def describe(planned: PlannedExpectation, result: dict[str, Any], success: bool,
             unit: str) -> tuple[str, dict[str, Any]]:
    """The sentence for one expectation's outcome, and its observed values as plain data."""
    units = "records" if planned.asset == RECORDS else f"{unit}s"
    total, bad = result.get("element_count"), result.get("unexpected_count") or 0
    if planned.expectation_type == "ExpectTableRowCountToBeBetween":
        observed = {"row_count": result.get("observed_value"),
                    **{k: v for k, v in planned.context.items() if k != "expected"}}
        text = f"{planned.subject}: {result.get('observed_value')} {units}"
        if "previous_rows" in planned.context and planned.context["previous_rows"]:
            share = 100 * (result.get("observed_value") or 0) / planned.context["previous_rows"]
            observed["percent_of_previous"] = round(share, 1)
            text += (f", {share:.1f}% of the {planned.context['previous_rows']} of previous batch"
                     f" {planned.context['previous_batch_id']}")
        return (text + ("" if success else f"; expected {planned.context['expected']}")), observed
    observed = {"rows": total, "unexpected": bad}
    if planned.context.get("presence"):
        judged, deletes = _presence_rows(result)
        carried = judged - bad
        observed = {"rows": total, "carried": carried} | ({"delete_records": deletes} if deletes else {})
        but = f" (and {deletes} delete {unit}(s) without it, which need not carry it)" if deletes else ""
        if carried or not judged:
            return f"{planned.subject}: carried by {carried} of {judged} {units}{but}", observed
        return f"{planned.subject}: carried by none of the {judged} {units} (no {unit} has the key){but}", observed
    where = _where(result, unit)
    if planned.expectation_type == "ExpectColumnValuesToNotBeNull":
        if not bad:
            return f"{planned.subject}: present in all {total} {units}", observed
        return f"{planned.subject}: {bad} of {total} {units} without a value{where}", observed
    if planned.expectation_type in ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique"):
        values = result.get("partial_unexpected_list") or []
        shown = []
        for v in values:
            v = tuple(v.values()) if isinstance(v, dict) else v
            if v not in shown:
                shown.append(v)
        observed["duplicated_keys"] = [list(v) if isinstance(v, tuple) else v for v in shown]
        if not bad:
            return f"{planned.subject}: unique in all {total} {units}", observed
        keys = f", duplicated keys: {_examples(shown)}" if shown else ""
        return f"{planned.subject}: {bad} of {total} {units} share a key with another{keys}{where}", observed
    # ExpectColumnValuesToBeInSet on a kind column
    seen = [(c["value"], c["count"]) for c in result.get("partial_unexpected_counts") or []]
    observed["unexpected_types"] = {str(k): n for k, n in seen}
    values = _values(result, planned.context.get("value_column"))
    if values:  # the offending values as the source wrote them, by landing record (a null or missing one has none)
        observed["values"] = values
    if not bad:
        return f"{planned.subject}: all {total} {units} as declared", observed
    kinds = ", ".join(str(k) for k, _ in seen) or "?"
    verb = "are missing it or have the wrong type" if planned.key != "list_present" else "have no list there"
    expected = " or ".join(planned.context.get("expected", []))
    return f"{planned.subject}: {bad} of {total} {units} {verb}: found {kinds}, expected {expected}{where}", observed


def verdict(plan: EntityPlan, results: dict[str, tuple[bool, dict[str, Any]]], *,
            seconds: float = 0.0) -> EntityVerdict:
    """Fold GX's results (expectation key -> (success, result dict)) into the entity's verdict."""
    outcomes = []
    rows = 0
    for planned in plan.expectations:
        success, result = results[planned.key]
        if planned.context.get("presence"):  # at least one row has the key (GX's share is only a proxy)
            judged, _ = _presence_rows(result)
            success = not judged or judged - (result.get("unexpected_count") or 0) > 0
        summary, observed = describe(planned, result, success, plan.unit)
        outcomes.append(ExpectationOutcome(planned.key, planned.label, planned.expectation_type, success, observed,
                                           summary, planned.severity))
        if planned.asset == ROWS and result.get("element_count") is not None:
            rows = int(result["element_count"])
        elif planned.expectation_type == "ExpectTableRowCountToBeBetween" and result.get("observed_value") is not None:
            rows = int(result["observed_value"])
    failed = [o for o in outcomes if not o.success and o.severity != "warning"]
    warned = [o for o in outcomes if not o.success and o.severity == "warning"]
    message = None
    if failed:
        message = (f"quality gate failed for {plan.entity} (batch {plan.batch_id}), "
                   f"{len(failed)} expectation(s): " + "; ".join(o.summary for o in failed))
    if warned:
        warning = f"{len(warned)} warning(s): " + "; ".join(o.summary for o in warned)
        message = (f"{message}; {warning}" if message
                   else f"quality gate passed for {plan.entity} (batch {plan.batch_id}) with {warning}")
    return EntityVerdict(plan.entity, plan.batch_id, not failed, rows, outcomes, plan.notes, message, seconds)


def error_verdict(entity: Entity, batch_id: int, error: BaseException) -> EntityVerdict:
    """A check that could not run fails its entity: nothing unchecked goes on to bronze. The error's
    text may quote the connection (the warehouse password): masked by the one redaction rule."""
    text = redact(" ".join(f"{type(error).__name__}: {error}".split()))[:2000]
    message = f"quality gate could not check {entity.name} (batch {batch_id}): {text}"
    return EntityVerdict(entity.name, batch_id, False, 0, [], [], message)
