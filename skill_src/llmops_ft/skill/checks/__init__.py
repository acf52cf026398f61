"""The harness's checks, one module each: format, consistency, grounding, hardware, commands.

Each check returns :class:`Finding` objects; an ``error`` fails check_skill.py, a ``warning`` is reported only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One problem: which check found it, where (file relative to the repo, 1-based line) and what."""

    check: str
    file: str
    line: int | None
    message: str
    severity: str = "error"

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.severity}: {self.message}"
