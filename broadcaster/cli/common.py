"""What every command shares: loading the context, acting as a user, printing tables or JSON, clean errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.users import require, resolve_actor

console = Console()
err_console = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Settings file (default: ./broadcaster.toml).")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")
UnmaskedOption = typer.Option(
    False,
    "--unmasked",
    help="Show names, phones and e-mails in full (admins only; recorded in the audit trail).",
)
CampaignArgument = typer.Argument(
    ..., help="Campaign id: the id field of its file, as campaigns list shows it."
)


class CliState:
    config: Path | None = None


state = CliState()


def fail(message: str, *, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def load_context() -> AppContext:
    return AppContext.load(state.config)


@contextmanager
def acting(action: str, *, write: bool = True) -> Iterator[tuple[AppContext, Session, User]]:
    """Open the context and one transaction, resolve the user and check the role for ``action``."""
    context = load_context()
    try:
        factory = context.sessions.begin if write else context.readers
        with factory() as session:
            user = resolve_actor(session)
            require(user, action)
            yield context, session, user
    finally:
        context.close()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_default) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def guarded(known: tuple[type[BaseException], ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn the errors a user can fix into one red line and a non-zero exit, not a traceback."""
    import functools

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except known as exc:
                fail(str(exc))

        return wrapper

    return decorate
