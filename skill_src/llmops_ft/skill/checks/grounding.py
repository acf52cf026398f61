"""Grounding: every recommendation agrees with the docs facts it cites.

Equal where a fact gives one value, inside where it gives a range, a member where it gives an enumeration, the
same list where it gives values. A fact about a derived parameter (effective batch size) is compared with the value
derived from the recommendation's group (batch x accumulation under the same condition). The result is a table:
parameter, skill value, docs value, source URL, verdict.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ...knowledge.recommendations import RecommendationSet
from ..values import fmt, is_range, member, normalize, same, within
from . import Finding

# derived parameter -> (a, b, op): op(value of a, value of b) within one condition group
DERIVED: dict[str, tuple[str, str, Callable[[float, float], float]]] = {
    "effective_batch_size": ("per_device_train_batch_size", "gradient_accumulation_steps", operator.mul),
    "lora_alpha_ratio": ("lora_alpha", "lora_rank", operator.truediv),
    "embedding_learning_rate_divisor": ("learning_rate", "embedding_learning_rate", operator.truediv),
}
DOCS_URL_PREFIX = "https://unsloth.ai/docs/"
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_.+:/% -]{1,60}$")
UNDERIVABLE = object()  # a derived value that the recommendation's group cannot give


@dataclass
class Row:
    """One line of the grounding table."""

    id: str
    parameter: str
    condition: str | None
    skill_value: str
    docs_value: str
    url: str
    fact: str | None
    origin: str | None
    verdict: str  # agrees | contradicts | missing | ours

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def safe_text(text: Any) -> str:
    """A fact string as the skill may show it: a short code-like token, else a placeholder (docs are untrusted)."""
    text = str(text)
    return text if _SAFE_TOKEN.match(text) else "(not shown)"


def safe_url(url: Any) -> str:
    """A fact URL if it is on the docs host, else a placeholder."""
    url = str(url)
    ok = url.startswith(DOCS_URL_PREFIX) and re.match(r"^[A-Za-z0-9:/._#-]+$", url)
    return url if ok else "(not shown)"


def fact_value_text(fact: dict[str, Any]) -> str:
    """The docs side of a row: ``2e-4``, ``0.05-0.1``, ``one of linear, cosine``, with the unit."""
    if "value" in fact:
        text = fmt(fact["value"]) if not isinstance(fact["value"], str) else safe_text(fact["value"])
    elif "range" in fact:
        text = f"{fmt(fact['range']['min'])}-{fmt(fact['range']['max'])}"
    elif "enum" in fact:
        text = "one of " + ", ".join(_show(item) for item in fact["enum"])
    else:
        text = ", ".join(_show(item) for item in fact.get("values", []))
    unit = fact.get("unit")
    return f"{text} {safe_text(unit)}" if unit else text


def _show(item: Any) -> str:
    return safe_text(item) if isinstance(item, str) else fmt(item)


def _scaled(value: Any, fact: dict[str, Any]) -> Any:
    """A fraction compared with a percent fact is read as a percentage."""
    if fact.get("unit") in ("%", "percent") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * 100 if value <= 1 else value
    return value


def agrees(value: Any, fact: dict[str, Any]) -> bool:
    """Does a recommendation's ``value`` agree with ``fact``?"""
    if isinstance(value, list):
        if "values" in fact:
            return sorted(map(str, normalize(value))) == sorted(map(str, normalize(fact["values"])))
        if "enum" in fact:
            return all(member(item, fact["enum"]) for item in value)
        if "range" in fact:
            return all(agrees(item, fact) for item in value)
        return member(fact["value"], value)
    if is_range(value):
        if "range" in fact:
            return within(value["min"], fact["range"]["min"], fact["range"]["max"]) and within(
                value["max"], fact["range"]["min"], fact["range"]["max"])
        return "value" in fact and within(fact["value"], value["min"], value["max"])
    value = _scaled(value, fact)
    if "value" in fact:
        return same(value, fact["value"])
    if "range" in fact:
        return within(value, fact["range"]["min"], fact["range"]["max"])
    if "enum" in fact:
        return member(value, fact["enum"])
    return member(value, fact.get("values", []))


def derived_value(recs: RecommendationSet, entry: dict[str, Any], parameter: str) -> Any:
    """The value of ``parameter`` derived from ``entry``'s condition group, or UNDERIVABLE."""
    if parameter not in DERIVED or entry["param"] not in DERIVED[parameter][:2]:
        return UNDERIVABLE
    a, b, op = DERIVED[parameter]
    group = [e for e in recs.entries.values() if e["param"] in (a, b) and e["condition"] == entry["condition"]]
    values = {e["param"]: e["value"] for e in group}
    if len(group) != 2 or set(values) != {a, b} or not all(_is_number(v) for v in values.values()):
        return UNDERIVABLE  # no single pair in the group: nothing to derive
    return op(values[a], values[b])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ground(recs: RecommendationSet, facts: dict[str, dict[str, Any]]) -> list[Row]:
    """The grounding table: one row per (recommendation, cited fact); a ``ours`` row for uncited entries."""
    rows: list[Row] = []
    for rec_id, entry in recs.entries.items():
        if not entry["facts"]:
            rows.append(Row(rec_id, entry["param"], entry["condition"], fmt(entry["value"]), "", "", None, None,
                            "ours"))
        for fact_id in entry["facts"]:
            fact = facts.get(fact_id)
            if fact is None:
                rows.append(Row(rec_id, entry["param"], entry["condition"], fmt(entry["value"]), "", "", fact_id,
                                None, "missing"))
                continue
            parameter, value = entry["param"], entry["value"]
            if fact["parameter"] != entry["param"]:
                parameter, value = fact["parameter"], derived_value(recs, entry, fact["parameter"])
            verdict = "agrees" if value is not UNDERIVABLE and agrees(value, fact) else "contradicts"
            shown = "(cannot derive)" if value is UNDERIVABLE else fmt(value)
            rows.append(Row(rec_id, parameter, entry["condition"], shown, fact_value_text(fact),
                            safe_url(fact.get("url", "")), fact_id, fact.get("origin"), verdict))
    return rows


def findings(recs: RecommendationSet, rows: list[Row], label: str) -> list[Finding]:
    """An error per contradicting or missing row, at the recommendation's line in ``label``."""
    out = []
    for row in rows:
        line = recs.lines.get(row.id)
        if row.verdict == "contradicts":
            out.append(Finding("grounding", label, line, f"{row.id}: {row.parameter} = {row.skill_value} but the docs "
                                                        f"say {row.docs_value} ({row.fact}, {row.url})"))
        elif row.verdict == "missing":
            out.append(Finding("grounding", label, line, f"{row.id}: cites fact {row.fact}, which the docs facts "
                                                        "do not have (renamed or gone: run scripts/sync_docs.py)"))
    return out


def _cut(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table_text(rows: list[Row]) -> str:
    """The grounding table as aligned plain text."""
    header = ("parameter", "skill value", "docs value", "source", "verdict")
    body = [(r.parameter + (f" [{r.condition}]" if r.condition else ""), _cut(r.skill_value), _cut(r.docs_value),
             r.url or "-", r.verdict.upper() if r.verdict in ("contradicts", "missing") else r.verdict) for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
