"""What is wrong with a campaign file: one ``Problem`` names the file, the line and the field, ready to print."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from broadcaster.rendering import shorten

__all__ = ["Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file or one of its templates."""

    file: Path
    line: int | None
    field: str | None
    message: str

    def __post_init__(self) -> None:
        # A file's values are quoted in messages: a few hundred characters at most, never a whole file.
        object.__setattr__(self, "message", shorten(self.message, 600))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
