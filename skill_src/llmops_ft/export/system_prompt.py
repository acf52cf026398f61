"""The Modelfile SYSTEM the model was trained with, read from the run's training rows.

Ollama puts the Modelfile's SYSTEM first when a request has no system message (what `ollama run` sends), so
SYSTEM must be the prompt the rows trained on. Three cases are recognised:

- every row opens with the same system prompt: that prompt;
- every row's prompt is one text with an ISO date (YYYY-MM-DD) in the same places, the date varying by row (a
  "Today is ..." prompt): the text with :data:`DATE_SLOT` where the dates were. Ollama does not expand SYSTEM,
  only TEMPLATE, so the TEMPLATE recognises this exact SYSTEM and writes Ollama's ``currentDate`` in the slots;
- no row has a system turn: nothing (the chat template's own default, if it has one, is what the rows saw).

Anything else (prompts that differ otherwise, some rows with a system turn and some without, no training
file) gives no SYSTEM from the rows, and a note says why.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import numbered_jsonl

DATE_SLOT = "{{ currentDate }}"
_ISO_DATE = re.compile(r"(?<![0-9])[0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])")


@dataclass(frozen=True)
class SystemPrompt:
    """A Modelfile SYSTEM: fixed text, or (dated) text whose DATE_SLOTs stand for the day of the request."""

    text: str
    dated: bool = False

    def on(self, day: dt.date) -> str:
        """The prompt as the model saw it in a row dated ``day`` (the text itself when not dated)."""
        return self.text.replace(DATE_SLOT, day.isoformat()) if self.dated else self.text


@dataclass(frozen=True)
class TrainingSystem:
    """What the training rows say about the system prompt, with the counts behind it."""

    kind: str  # shared | dated | none | varied | mixed | unknown
    system: SystemPrompt | None
    rows_with: int = 0
    rows_without: int = 0
    distinct: int = 0
    source: str | None = None  # the training file read, as run.json names it

    def note(self) -> str | None:
        """Why SYSTEM is not what the rows trained with, or how a dated SYSTEM works; None when it simply is."""
        rows = self.rows_with + self.rows_without
        advice = "send the system prompt your rows used with each request (Ollama API 'system' or a system message)"
        if self.kind == "dated":
            return (f"all {rows} training rows share one system prompt but for its date: SYSTEM holds "
                    f"{DATE_SLOT} and the TEMPLATE writes Ollama's current date there (Ollama expands TEMPLATE, "
                    "not SYSTEM); a client's own system message replaces it")
        if self.kind == "varied":
            return (f"the {rows} training rows have {self.distinct} different system prompts, not differing only "
                    f"by an ISO date, so no SYSTEM is the training one; {advice}")
        if self.kind == "mixed":
            return (f"{self.rows_with} of {rows} training rows open with a system prompt and {self.rows_without} "
                    f"do not, so no SYSTEM is the training one; {advice}")
        if self.kind == "unknown":
            return f"the training rows ({self.source or 'not recorded in run.json'}) could not be read, so no " \
                   f"SYSTEM is known to be the training one; {advice}"
        return None

    def modelfile_system(self, template_default: str | None) -> tuple[SystemPrompt | None, str | None]:
        """(SYSTEM, note for the export summary). Without a training SYSTEM, the chat template's own default
        (SmolLM2's, Qwen's) stands in, so Ollama renders what transformers renders for a chat without one."""
        note = self.note()
        if self.system is not None or template_default is None:
            return self.system, note
        if note:
            note += "; SYSTEM is the chat template's own default, which it adds to any chat without a system turn"
        return SystemPrompt(template_default), note

    def to_dict(self) -> dict[str, Any]:
        """The figures for export.json."""
        return {"kind": self.kind, "rows_with_system": self.rows_with, "rows_without_system": self.rows_without,
                "distinct_prompts": self.distinct, "dated": bool(self.system and self.system.dated)}


def classify(prompts: list[str | None], source: str | None = None) -> TrainingSystem:
    """The SYSTEM that ``prompts`` (each row's opening system text, None for a row without one) were trained on."""
    counts = Counter(prompts)
    rows_with = sum(n for p, n in counts.items() if p is not None)
    rows_without = counts.get(None, 0)
    distinct = len(counts) - (1 if rows_without else 0)
    figures = {"rows_with": rows_with, "rows_without": rows_without, "distinct": distinct, "source": source}
    if not prompts:
        return TrainingSystem("unknown", None, **figures)
    if rows_with == 0:
        return TrainingSystem("none", None, **figures)
    if rows_without:
        return TrainingSystem("mixed", None, **figures)
    if distinct == 1:
        return TrainingSystem("shared", SystemPrompt(prompts[0]), **figures)
    shape = _dated_shape([p for p in counts if p is not None])
    if shape is not None:
        return TrainingSystem("dated", SystemPrompt(shape, dated=True), **figures)
    return TrainingSystem("varied", None, **figures)


def _dated_shape(prompts: list[str]) -> str | None:
    """The one text all ``prompts`` share once their ISO dates become DATE_SLOT, if only those dates differ.

    Each prompt must carry at least one real calendar date, one date per prompt (every slot of a prompt the
    same day), and the text around the slots must be identical: then the date is the row's "today".
    """
    shapes = set()
    for prompt in prompts:
        if DATE_SLOT in prompt:
            return None
        dates = set(_ISO_DATE.findall(prompt))
        if len(dates) != 1 or not _is_date(next(iter(dates))):
            return None
        shapes.add(_ISO_DATE.sub(DATE_SLOT, prompt))
    return shapes.pop() if len(shapes) == 1 else None


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def training_system(info: dict[str, Any], run_dir: Path) -> TrainingSystem:
    """Read the training file that run.json (``info``) names and classify its rows' system prompts.

    A relative path is tried as written, then against the run dir. When the file is gone, the shared prompt
    train recorded in run.json ("system_prompt") still counts; otherwise the answer is "unknown".
    """
    recorded = info.get("system_prompt")
    train = (info.get("dataset") or {}).get("train")
    path = next((p for p in (Path(train), run_dir / train) if p.is_file()), None) if train else None
    if path is None:
        if recorded:
            return TrainingSystem("shared", SystemPrompt(recorded), source=train)
        return TrainingSystem("unknown", None, source=train)
    return classify(list(_opening_system_prompts(path)), source=train)


def _opening_system_prompts(path: Path):
    """Each row's opening system text (None when the row has no system turn, or is a plain-text row)."""
    for number, row in numbered_jsonl(path):
        messages = row.get("messages") if isinstance(row, dict) else None
        if isinstance(row, dict) and "text" in row and messages is None:
            yield None
            continue
        if not isinstance(messages, list):
            raise UserError('expected a {"messages": [...]} or {"text": ...} row', file=str(path), line=number,
                            field="messages")
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        content = first.get("content")
        if first.get("role") == "system" and not isinstance(content, str):
            raise UserError("the system turn's content is not a string", file=str(path), line=number,
                            field="messages[0].content")
        yield content if first.get("role") == "system" else None
