"""One error type for bad input: reported as a single line naming file, line and field, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what the user gave us (file, config, flag), not a bug in this package."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        code: int = 2,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.code = code

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = str(self.file) + (f":{self.line}" if self.line else "") + ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}".replace("\n", " ")
