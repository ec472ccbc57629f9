"""Files written whole or not at all: a report, an export, a stored evidence file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def writing_whole(target: Path) -> Iterator[Path]:
    """The path to write instead (``<target>.part``), renamed to ``target`` when the block ends; an error or an
    interruption leaves nothing under the name asked for."""
    partial = target.with_name(target.name + ".part")
    try:
        yield partial
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
