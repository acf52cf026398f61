"""The Task API call schema (one copy: examples/task_api/task_api.schema.json) and the canonical call encoding."""

from __future__ import annotations

import functools
import json
from typing import Any

from ..errors import UserError
from ..knowledge.resources import resources_dir

SCHEMA_PATH = resources_dir() / "task_api" / "task_api.schema.json"

ACTIONS = ("create", "list", "update", "complete", "delete", "assign", "comment", "clarify")

# The one key order every target is written in: action first, then the task it names, then its fields.
KEY_ORDER = (
    "action", "id", "title", "project", "assignee", "due", "priority", "tags",
    "status", "tag", "due_after", "due_before", "text", "question",
)
_RANK = {key: i for i, key in enumerate(KEY_ORDER)}


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The Task API jsonschema (draft 2020-12)."""
    try:
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("Task API schema not found (run from a checkout of the repository)",
                        file="examples/task_api/task_api.schema.json") from None


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema

    cls = jsonschema.Draft202012Validator
    return cls(load_schema(), format_checker=cls.FORMAT_CHECKER)


def schema_errors(call: Any) -> list[str]:
    """Every way ``call`` breaks the schema, as 'path: message' strings; empty when it is valid."""
    errors = sorted(_validator().iter_errors(call), key=lambda e: (list(e.absolute_path), e.message))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(call)'}: {e.message}" for e in errors]


def is_valid(call: Any) -> bool:
    """True when ``call`` is a valid Task API call."""
    return _validator().is_valid(call)


def encode_call(call: dict[str, Any]) -> str:
    """The canonical text of a call: compact JSON, keys in KEY_ORDER (unknown keys last, sorted)."""
    keys = sorted(call, key=lambda k: (_RANK.get(k, len(_RANK)), k))
    return json.dumps({k: call[k] for k in keys}, ensure_ascii=False, separators=(",", ":"))
