"""Compare two fact sets and show what changed, with the recommendations each changed fact supports."""

from __future__ import annotations

from typing import Any

from ..knowledge.facts import describe


def diff_facts(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """``{"added": [fact], "removed": [fact], "changed": [{"id", "old", "new"}]}``, each sorted by id."""
    return {
        "added": [new[i] for i in sorted(new.keys() - old.keys())],
        "removed": [old[i] for i in sorted(old.keys() - new.keys())],
        "changed": [{"id": i, "old": old[i], "new": new[i]} for i in sorted(old.keys() & new.keys())
                    if old[i] != new[i]],
    }


def has_drift(diff: dict[str, list[Any]]) -> bool:
    """True when anything was added, removed or changed."""
    return any(diff[kind] for kind in ("added", "removed", "changed"))


def citing_recommendations() -> dict[str, list[str]]:
    """Fact id -> ids of the recommendations in ``skill_src/recommendations.yaml`` that cite it."""
    from ..knowledge.recommendations import RECOMMENDATIONS_PATH, load_recommendations

    if not RECOMMENDATIONS_PATH.exists():
        return {}
    index: dict[str, list[str]] = {}
    for rec_id, entry in load_recommendations().items():
        for fact_id in entry.get("facts") or []:
            index.setdefault(fact_id, []).append(rec_id)
    return {k: sorted(v) for k, v in index.items()}


def drift_rows(diff: dict[str, list[Any]], cited: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One row per added, removed or changed fact: id, change, old, new, recommendations citing it."""
    rows = []
    for fact in diff["added"]:
        rows.append({"id": fact["id"], "change": "added", "old": None, "new": fact})
    for fact in diff["removed"]:
        rows.append({"id": fact["id"], "change": "removed", "old": fact, "new": None})
    for item in diff["changed"]:
        rows.append({"id": item["id"], "change": "changed", "old": item["old"], "new": item["new"]})
    for row in rows:
        row["recommendations"] = cited.get(row["id"], [])
    return sorted(rows, key=lambda r: r["id"])


def drift_table(rows: list[dict[str, Any]]) -> str:
    """The drift rows as a markdown table: fact, change, old, new, recommendations."""
    lines = ["| fact | change | old | new | recommendations |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        recs = ", ".join(row["recommendations"]) or "-"
        lines.append(f"| {row['id']} | {row['change']} | {describe(row['old'])} | {describe(row['new'])} | {recs} |")
    return "\n".join(lines)
