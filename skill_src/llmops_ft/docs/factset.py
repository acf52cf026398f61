"""The facts of one page as they are extracted: ids, payload normalisation, and the plain-token rule for values."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..knowledge.pages import Page

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:;&/+()?'%-]")
# One token, or two ("vicuna old"): the same rule as schemas/fact.json, so prose cannot pass as a value.
_TOKEN = re.compile(r"^(?=.{1,64}$)[A-Za-z0-9_.+*/%:-]+( [A-Za-z0-9_.+*/%:-]+)?$")


@dataclass
class PageFacts:
    """What the extractor made of one page: its facts by id and what it saw but could not use (with reasons)."""

    page: Page
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(
        self,
        parameter: str,
        qualifier: str | None,
        section: str,
        payload: dict[str, Any],
        *,
        unit: str | None = None,
        condition: str | None = None,
        origin: str = "extracted",
    ) -> None:
        """Record a fact; a second value for the same id widens it into an enumeration (a set)."""
        fact_id = f"{self.page.key}.{parameter}" + (f".{qualifier}" if qualifier else "")
        payload = {k: _normalise_payload(k, v) for k, v in payload.items()}
        refused = [v for v in _scalars(payload) if not _plain(v)]
        if refused:  # docs text is untrusted: a value must be a short plain token or a finite number
            self.skipped.append(f"{section}: {fact_id} refused, value {str(refused[0])[:40]!r} is not a plain token")
            return
        if fact_id in self.facts:
            self._merge(self.facts[fact_id], payload)
            return
        self.facts[fact_id] = {
            "id": fact_id,
            "parameter": parameter,
            **payload,
            "unit": unit,
            "condition": condition or self.page.condition,
            "url": self.page.url,
            "section": safe_text(section or self.page.title),
            "origin": origin,
        }

    @staticmethod
    def _merge(fact: dict[str, Any], payload: dict[str, Any]) -> None:
        old = _members(fact)
        new = _members(payload)
        if old is None or new is None:
            return  # a range or list is stated once; a repeat adds nothing
        merged = _sorted_set(old + [v for v in new if v not in old])
        for kind in ("value", "enum"):
            fact.pop(kind, None)
        if len(merged) == 1:
            fact["value"] = merged[0]
        else:
            fact["enum"] = merged


def _scalars(payload: dict[str, Any]) -> list[Any]:
    items = list(payload.get("enum", [])) + list(payload.get("values", [])) + list(payload.get("range", {}).values())
    return items + ([payload["value"]] if "value" in payload else [])


def _plain(value: Any) -> bool:
    """A fact value: a bool, a finite number (JSON has no inf/nan) or a short plain token."""
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return isinstance(value, str) and bool(_TOKEN.match(value))


def _members(payload: dict[str, Any]) -> list[Any] | None:
    if "value" in payload:
        return [payload["value"]]
    if "enum" in payload:
        return list(payload["enum"])
    return None


def _sorted_set(items: list[Any]) -> list[Any]:
    """An enumeration's canonical order: numbers ascending; strings (and mixes) in page order."""
    unique = []
    for item in items:
        if item not in unique:
            unique.append(item)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in unique):
        return sorted(unique)
    return unique


def _normalise_payload(kind: str, value: Any) -> Any:
    if kind == "enum":
        return _sorted_set([_scalar(v) for v in value])
    if kind == "values":
        return [_scalar(v) for v in value]
    if kind == "range":
        low, high = sorted((value["min"], value["max"]))
        return {"min": _scalar(low), "max": _scalar(high)}
    return _scalar(value)


def _scalar(value: Any) -> Any:
    """Facts hold numbers, booleans and short strings; ``None`` in code is the string "None"."""
    if value is None:
        return "None"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return int(value)
    return value


def safe_text(text: str, limit: int = 100) -> str:
    """Reduce docs text to the schema's short, conservative character set (ASCII, no quotes, no markup)."""
    text = unicodedata.normalize("NFKD", text).replace("’", "'").replace("—", "-").replace("–", "-")
    text = _UNSAFE.sub("", text.encode("ascii", "ignore").decode())
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text


def number(text: str) -> int | float:
    """A number as the docs write it: ``2e-4``, ``0.01``, ``1,000``."""
    value = float(text.replace(",", ""))
    return int(value) if value.is_integer() and "e" not in text.lower() else value
