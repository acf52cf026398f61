"""Conversations from dataset rows: prompt = every turn but the last assistant one, target = that turn's text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import json_lines


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
    """Chat examples of a JSONL file (first ``limit``), and one note per row skipped with its reason.

    A line that is not JSON (or not UTF-8, or nested too deeply) is a UserError naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("data file not found", file=str(path))
    examples: list[Example] = []
    skipped: list[str] = []
    for entry in json_lines(path):
        if entry.blank:
            continue
        if limit is not None and len(examples) >= limit:
            break
        if entry.error:
            raise UserError(entry.error, file=str(path), line=entry.line)
        number, row = entry.line, entry.value
        if isinstance(row, dict) and isinstance(row.get("text"), str) and "messages" not in row:
            examples.append(Example(number, [], row["text"]))
            continue
        if not isinstance(row, dict) or not _is_chat(row.get("messages")):
            skipped.append(f"{path.name}:{number}: neither a messages list (of role/content turns) nor a text field")
            continue
        prompt, target = split_row(row)
        if not any(m.get("role") == "user" for m in prompt):
            skipped.append(f"{path.name}:{number}: no user turn")
            continue
        examples.append(Example(number, prompt, target))
    return examples, skipped


def _is_chat(messages: Any) -> bool:
    """A list of turns, each a dict with a string role and string content."""
    return isinstance(messages, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content", ""), str)
        for m in messages)
