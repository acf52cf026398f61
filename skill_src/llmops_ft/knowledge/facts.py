"""Load and validate the committed docs facts (``docs_cache/facts/<page key>.json``) and the manifest."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UserError
from .pages import PAGES_BY_KEY
from .resources import resources_dir

DOCS_CACHE = resources_dir() / "docs_cache"  # read-only: sync-docs writes to the checkout's docs_cache/
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@functools.lru_cache(maxsize=2)
def _validator(name: str):
    import jsonschema

    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_fact(fact: Any, file: str = "<facts>") -> None:
    """Raise :class:`UserError` naming the fact and field when ``fact`` breaks ``schemas/fact.json``."""
    errors = sorted(_validator("fact.json").iter_errors(fact), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(fact)"
        fact_id = fact.get("id", "?") if isinstance(fact, dict) else "?"
        raise UserError(f"fact {fact_id}: {err.message[:200]}", file=file, field=where)


def validate_facts(facts: Iterable[Any], file: str = "<facts>", key: str | None = None) -> dict[str, dict[str, Any]]:
    """Validate a list of facts; return them by id (ids unique and, with ``key``, all of that page)."""
    out: dict[str, dict[str, Any]] = {}
    for fact in facts:
        validate_fact(fact, file)
        if fact["id"] in out:
            raise UserError(f"duplicate fact id {fact['id']}", file=file, field="id")
        if key is not None and not fact["id"].startswith(key + "."):
            raise UserError(f"fact {fact['id']} does not belong to page {key}", file=file, field="id")
        out[fact["id"]] = fact
    return out


def validate_manifest(manifest: Any, file: str = "manifest.json") -> dict[str, Any]:
    """Validate a manifest against ``schemas/manifest.json``; return it."""
    errors = sorted(_validator("manifest.json").iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(manifest)"
        raise UserError(errors[0].message[:200], file=file, field=where)
    return manifest


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("missing; run scripts/sync_docs.py to build the docs cache", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None


def load_manifest(cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The validated ``manifest.json`` of ``cache_dir`` (default: the repo's ``docs_cache``)."""
    path = Path(cache_dir or DOCS_CACHE) / "manifest.json"
    return validate_manifest(_read_json(path), str(path))


def load_facts(cache_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every validated fact of ``cache_dir`` (default: the repo's ``docs_cache``), by id, sorted by id."""
    facts_dir = Path(cache_dir or DOCS_CACHE) / "facts"
    if not facts_dir.is_dir():
        raise UserError("missing; run scripts/sync_docs.py to build the docs cache", file=str(facts_dir))
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(facts_dir.glob("*.json")):
        key = path.stem
        if key not in PAGES_BY_KEY:
            raise UserError(f"{key!r} is not a known docs page", file=str(path))
        data = _read_json(path)
        if not isinstance(data, list):
            raise UserError("must be a JSON list of facts", file=str(path))
        out.update(validate_facts(data, str(path), key))
    return dict(sorted(out.items()))


def count_curated(facts: dict[str, dict[str, Any]]) -> int:
    """How many of ``facts`` are curated (typed in with a citation) rather than extracted."""
    return sum(1 for fact in facts.values() if fact["origin"] == "curated")


def describe(fact: dict[str, Any] | None) -> str:
    """A fact's payload in a few characters: ``16``, ``0.05-0.1 fraction``, ``linear|cosine``, ``[q_proj,...]``."""
    if fact is None:
        return "-"
    if "value" in fact:
        text = json.dumps(fact["value"]).strip('"')
    elif "range" in fact:
        text = f"{fact['range']['min']}-{fact['range']['max']}"
    elif "enum" in fact:
        text = "|".join(json.dumps(v).strip('"') for v in fact["enum"])
    else:
        text = "[" + ",".join(json.dumps(v).strip('"') for v in fact["values"]) + "]"
    if fact.get("unit"):
        text += f" {fact['unit']}"
    if fact.get("condition"):
        text += f" ({fact['condition']})"
    return text
