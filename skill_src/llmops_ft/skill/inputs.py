"""Where the skill's inputs come from: the recommendations file and the docs facts (the cache, or a mirror)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..knowledge.recommendations import RecommendationSet, load_set


def load_facts(docs: str | Path | None = None) -> tuple[dict[str, dict[str, Any]], str]:
    """(validated facts by id, where they came from): the repo's docs_cache, or facts extracted from ``docs``.

    ``docs`` is a local mirror laid out like the docs site or a saved llms-full.txt; the cache is not touched.
    """
    if docs is None:
        from ..knowledge.facts import load_facts as load_cached

        return load_cached(), "docs_cache"
    from ..docs.sync import facts_from_mirror

    return facts_from_mirror(docs), Path(docs).name


def load_recommendations(path: str | Path | None = None) -> RecommendationSet:
    """The validated recommendations (default: skill_src/recommendations.yaml)."""
    return load_set(str(path) if path else None)
