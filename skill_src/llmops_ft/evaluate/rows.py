"""Conversations from dataset rows: prompt = every turn but the last assistant one, target = that turn's text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError


@dataclass
class Example:
    """One evaluation example."""

    line: int
    prompt: list[dict[str, str]]  # empty for a plain-text row
    target: str | None  # the last assistant turn (or the text); None when the row ends with a user turn


def split_row(row: dict[str, Any]) -> tuple[list[dict[str, str]], str | None]:
    """(prompt messages, target text) of a ``{"messages": [...]}`` row."""
    messages = row["messages"]
    if messages and messages[-1].get("role") == "assistant":
        return messages[:-1], messages[-1].get("content", "")
    return messages, None


def read_examples(path: str | Path, limit: int | None = None) -> tuple[list[Example], list[str]]:
    """Chat examples of a JSONL file (first ``limit``), and one note per row skipped with its reason."""
    path = Path(path)
    if not path.is_file():
        raise UserError("data file not found", file=str(path))
    examples: list[Example] = []
    skipped: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if limit is not None and len(examples) >= limit:
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"not valid JSON ({exc.msg})", file=str(path), line=number) from None
            if isinstance(row, dict) and isinstance(row.get("text"), str) and "messages" not in row:
                examples.append(Example(number, [], row["text"]))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
                skipped.append(f"{path.name}:{number}: neither a messages list nor a text field")
                continue
            prompt, target = split_row(row)
            if not any(m.get("role") == "user" for m in prompt):
                skipped.append(f"{path.name}:{number}: no user turn")
                continue
            examples.append(Example(number, prompt, target))
    return examples, skipped


def is_task_api(targets: list[str | None]) -> bool:
    """True when every target is a valid Task API call (the Task API metrics then apply)."""
    from ..taskapi.schema import is_valid
    from ..taskapi.score import parse_call

    calls = [parse_call(t) if t is not None else None for t in targets]
    return bool(calls) and all(call is not None and is_valid(call) for call in calls)
