"""What a command returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """What a command returns: ``data`` is printed by ``--json``, ``text`` otherwise."""

    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    exit_code: int = 0
