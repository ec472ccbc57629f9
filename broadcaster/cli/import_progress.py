"""The progress ``contacts import`` shows while a file is read: rows, rows per second, and the time left from
the share of the file's bytes read (a CSV; an XLSX, a zip, shows rows only), as ``send`` shows its run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from broadcaster.contacts.records import ReadProgress
from broadcaster.i18n import gettext as _

__all__ = ["import_progress"]


@contextlib.contextmanager
def import_progress(name: str, *, console: Console) -> Iterator[Callable[[ReadProgress], None]]:
    """A progress line for the import of the file ``name``; yields what the importer calls as it reads. Not on
    a console that is no terminal (a log, a pipe): a bar's last frame there is noise before the report."""
    if not console.is_terminal:
        yield _unseen
        return
    with Progress(
        TextColumn("[bold]{task.description}[/]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]}"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(name, total=None, rows="")
        started = time.monotonic()

        def update(read: ReadProgress) -> None:
            rate = read.rows / max(time.monotonic() - started, 1e-3)
            rows = _("%(rows)s rows, %(rate)s rows/s") % {"rows": f"{read.rows:,}", "rate": f"{rate:,.0f}"}
            progress.update(task, total=read.total_bytes, completed=read.bytes_read, rows=rows)

        yield update


def _unseen(read: ReadProgress) -> None:
    del read
