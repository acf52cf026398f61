"""Task scorers: evaluate and export verification pick one from the data, never by the task's name.

A task (such as the Task API example) registers a :class:`Scorer` as an entry point in the group
``llmops_ft.scorers``. The first scorer that accepts every reference answer of a data set scores it; data no scorer
accepts is compared by loss.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "llmops_ft.scorers"


@dataclass(frozen=True)
class Scorer:
    """How to read and score one task's answers."""

    name: str
    parse: Callable[[str], Any | None]  # one answer -> its structured value, None when it does not parse
    is_valid: Callable[[Any], bool]  # a parsed answer is a well-formed answer of this task
    score_all: Callable[[Sequence[str], Sequence[str]], dict[str, Any]]  # predictions vs references -> scores
    metrics: tuple[tuple[str, str], ...] = ()  # (label, key in score_all's result) for reports, headline first

    def accepts(self, targets: Sequence[str | None]) -> bool:
        """True when every reference answer is a valid answer of this task."""
        values = [self.parse(t) if t is not None else None for t in targets]
        return bool(values) and all(v is not None and self.is_valid(v) for v in values)


@functools.lru_cache(maxsize=1)
def registered() -> tuple[Scorer, ...]:
    """Every scorer installed under the entry-point group, in name order."""
    found = [ep.load() for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)]
    return tuple(s for s in found if isinstance(s, Scorer))


def scorer_for(targets: Sequence[str | None]) -> Scorer | None:
    """The first registered scorer that accepts every target, else None."""
    return next((s for s in registered() if s.accepts(targets)), None)
