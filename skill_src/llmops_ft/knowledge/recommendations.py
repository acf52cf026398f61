"""Read `recommendations.yaml` (packaged from skill_src/): the one source of the values the skill and configs use.

The file is validated by ``schemas/recommendations.json`` plus the rules a schema cannot state (unique ids, known
params and conditions); a problem is a :class:`UserError` naming the file, the line and the field.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from .resources import resources_dir

RECOMMENDATIONS_PATH = resources_dir() / "recommendations.yaml"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "recommendations.json"

# Condition parts that match their own value in the text (model:8B matches "8B") instead of a contexts entry.
SELF_MATCHING_KINDS = ("model", "quant", "method")


@dataclass(frozen=True)
class RecommendationSet:
    """A validated recommendations file: entries by id (file order), params, contexts, and where each entry is."""

    path: Path
    entries: dict[str, dict[str, Any]]
    params: dict[str, dict[str, list[str]]]
    contexts: dict[str, list[str]]
    lines: dict[str, int]

    def by_param(self, param: str) -> list[dict[str, Any]]:
        """The entries recommending a value for ``param``, in file order."""
        return [entry for entry in self.entries.values() if entry["param"] == param]

    def name_to_param(self) -> dict[str, str]:
        """Every spelling in code or configs (``r``, ``warmup_ratio``) -> canonical parameter name."""
        return {name: param for param, spec in self.params.items() for name in spec["names"]}


def load_set(path: str | None = None) -> RecommendationSet:
    """Load and validate a recommendations file (default: the repo's); cached until the file changes."""
    file = Path(path or RECOMMENDATIONS_PATH)
    try:
        stat = file.stat()
        version = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        version = None  # _load reports it
    return _load(str(file), version)


@functools.lru_cache(maxsize=8)
def _load(path: str, version: tuple[int, int] | None) -> RecommendationSet:
    import yaml

    file = Path(path)
    label = path
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read recommendations: {exc.strerror}", file=label) from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=label,
                        line=mark.line + 1 if mark else None) from None
    lines = _node_lines(node) if node is not None else {}
    problems = _schema_problems(data) or _semantic_problems(data)
    if problems:
        where, message = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise UserError(message + more, file=label, line=_line_of(lines, where), field=_dotted(data, where))
    entries = {entry["id"]: {"condition": None, **entry} for entry in data["recommendations"]}
    entry_lines = {entry["id"]: lines.get(("recommendations", i), 0) for i, entry in enumerate(data["recommendations"])}
    return RecommendationSet(file, entries, data["params"], data["contexts"], entry_lines)


def load_recommendations(path: str | None = None) -> dict[str, dict[str, Any]]:
    """Map recommendation id -> entry (param, value, condition, label, hardware, rationale, facts, basis)."""
    return load_set(path).entries


def recommended(rec_id: str) -> Any:
    """The recommended value of ``rec_id`` (KeyError names an unknown id)."""
    return load_recommendations()[rec_id]["value"]


def condition_parts(condition: str | None) -> list[str]:
    """``"model:8B,method:qlora"`` -> ``["model:8B", "method:qlora"]``; None -> []."""
    return condition.split(",") if condition else []


# --- validation -----------------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _schema_problems(data: Any) -> list[tuple[Path_, str]]:
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return [(tuple(error.absolute_path), _schema_message(error)) for error in errors]


def _schema_message(error) -> str:
    if error.validator == "oneOf":
        return "value must be a scalar, a list of scalars, or {min, max}"
    if error.validator == "minItems" and error.absolute_path and error.absolute_path[-1] == "facts":
        return "basis: docs needs at least one fact id (or say basis: ours and why in the rationale)"
    return error.message


def _semantic_problems(data: dict[str, Any]) -> list[tuple[Path_, str]]:
    problems: list[tuple[Path_, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["recommendations"]):
        if entry["id"] in seen:
            problems.append((("recommendations", i, "id"), f"duplicate id {entry['id']!r}"))
        seen.add(entry["id"])
        if entry["param"] not in data["params"]:
            problems.append((("recommendations", i, "param"), f"unknown param {entry['param']!r}: add it to params"))
        for part in condition_parts(entry.get("condition")):
            if part not in data["contexts"] and part.split(":")[0] not in SELF_MATCHING_KINDS:
                problems.append((("recommendations", i, "condition"),
                                 f"unknown condition {part!r}: add it to contexts"))
    return problems


def _node_lines(node, path: Path_ = ()) -> dict[Path_, int]:
    """1-based line of every mapping value and sequence item in a composed YAML tree, keyed by its path."""
    import yaml

    lines = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(_node_lines(value, (*path, key.value)))
            lines[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_node_lines(item, (*path, i)))
    return lines


def _line_of(lines: dict[Path_, int], where: Path_) -> int | None:
    for cut in range(len(where), -1, -1):
        if where[:cut] in lines:
            return lines[where[:cut]]
    return None


def _dotted(data: Any, where: Path_) -> str:
    """A readable field name: recommendations[3].value becomes ``<id>.value`` when the entry has an id."""
    if len(where) >= 2 and where[0] == "recommendations" and isinstance(where[1], int):
        entries = data.get("recommendations", []) if isinstance(data, dict) else []
        entry = entries[where[1]] if where[1] < len(entries) else {}
        name = entry.get("id", f"recommendations[{where[1]}]") if isinstance(entry, dict) else str(where[1])
        return ".".join([name, *map(str, where[2:])]) if len(where) > 2 else name
    return re.sub(r"\.(\d+)", r"[\1]", ".".join(map(str, where)))
