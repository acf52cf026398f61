"""Read `skill_src/recommendations.yaml`: the one source of the values the skill and the configs recommend."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

SKILL_SRC = Path(__file__).resolve().parents[2]
RECOMMENDATIONS_PATH = SKILL_SRC / "recommendations.yaml"


@functools.lru_cache(maxsize=4)
def load_recommendations(path: str | None = None) -> dict[str, dict[str, Any]]:
    """Map recommendation id -> entry (value, hardware, rationale, facts)."""
    import yaml

    data = yaml.safe_load(Path(path or RECOMMENDATIONS_PATH).read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in data["recommendations"]}


def recommended(rec_id: str) -> Any:
    """The recommended value of ``rec_id`` (KeyError names an unknown id)."""
    return load_recommendations()[rec_id]["value"]
