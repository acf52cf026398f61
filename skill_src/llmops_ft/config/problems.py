"""ConfigError: every problem of a run config, reported at once on one line."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: the dotted key path, what is wrong, and the YAML line when known."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path}: {self.message}{where}" if self.path else f"{self.message}{where}"


class ConfigError(UserError):
    """A run config that cannot be used; ``problems`` holds each problem, ``str()`` lists them all on one line."""

    def __init__(self, problems: list[Problem], *, file: str | None = None, line: int | None = None) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems), file=file, line=line)

    @classmethod
    def single(cls, path: str, message: str, *, file: str | None = None, line: int | None = None) -> ConfigError:
        """A ConfigError with one problem."""
        return cls([Problem(path, message, line)], file=file)
