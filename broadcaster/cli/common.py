"""What every command shares: loading the context, acting as a user, printing tables or JSON, clean errors."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from broadcaster.clock import LOCAL_TZ
from broadcaster.consent_texts import consent_message
from broadcaster.context import AppContext
from broadcaster.db.models import User
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings import find_config
from broadcaster.users import require, resolve_actor
from broadcaster.whole_files import writing_whole

console = Console()
err_console = Console(stderr=True)

ConfigOption = typer.Option(None, "--config", "-c", help="Settings file (default: ./broadcaster.toml).")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")
VersionOption = typer.Option(None, "--version", "-v", help="Version number (default: the latest).")
UnmaskedOption = typer.Option(
    False,
    "--unmasked",
    help="Show names, phones and e-mails in full (admins only; recorded in the audit trail).",
)
# The period and the file of a listing's export (``messages``, ``audit search``).
FromOption = typer.Option(
    None, "--from", help="From this date or time (YYYY-MM-DD[THH:MM], Da Nang time), inclusive."
)
ToOption = typer.Option(
    None, "--to", help="Up to this date (the whole day) or time (YYYY-MM-DD[THH:MM], Da Nang time)."
)
ExportOutOption = typer.Option(None, "--out", help="Write the csv or jsonl export to this file (UTF-8).")
CampaignArgument = typer.Argument(
    ..., help="Campaign id: the id field of its file, as campaigns list shows it."
)


class CliState:
    config: Path | None = None
    debug: bool = False


state = CliState()


def print_error(message: str) -> None:
    """``error: …`` on stderr as one line; the message is text, so ``[providers.x]`` in it stays visible."""
    err_console.print(
        _("[bold red]error:[/] %(escape)s") % {"escape": escape(message)}, highlight=False, soft_wrap=True
    )


def fail(message: str, *, code: int = 1) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def report_unexpected(exc: Exception) -> None:
    """An error nobody planned for: one line that says where the traceback went (``--debug`` prints it)."""
    if state.debug:
        sys.stderr.write("".join(traceback.format_exception(exc)))
        return
    log = _write_crash_log(exc)
    where = (
        _("the traceback is in %(log)s") % {"log": log}
        if log
        else _("the traceback could not be written to a file")
    )
    print_error(
        _("%(explain)s (%(where)s; run again with --debug to print it here)")
        % {"explain": _explain(exc), "where": where}
    )


def broker_unreachable(exc: BaseException) -> bool:
    """kombu raises an OperationalError of its own when the broker cannot be reached: a setting too."""
    return type(exc).__module__.startswith("kombu") and type(exc).__name__ == "OperationalError"


def _explain(exc: Exception) -> str:
    if broker_unreachable(exc):
        return _(
            "cannot reach the broker: %(reason)s. Check [broker] url in broadcaster.toml "
            "(or BROADCASTER_BROKER__URL) and that the broker runs (`broadcaster health --only broker`)"
        ) % {"reason": first_line(exc)}
    # PEP 249 names what a driver raises when it cannot reach or open the database: a setting, not a bug.
    # SQLAlchemy wraps it under the same name (with the driver's error as ``orig``); raw connections do not.
    if type(exc).__name__ in ("OperationalError", "InterfaceError"):
        reason = first_line(getattr(exc, "orig", None) or exc)
        return _(
            "cannot use the database: %(reason)s. Check [database] url in broadcaster.toml "
            "(or BROADCASTER_DATABASE__URL), that the database is reachable, and run `broadcaster db upgrade`"
        ) % {"reason": reason}
    return _("unexpected %(error)s: %(message)s") % {"error": type(exc).__name__, "message": first_line(exc)}


def first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0] if lines else "(no message)"


def _write_crash_log(exc: Exception) -> Path | None:
    """Next to the engine's logs when there is a working directory, else in the temporary directory."""
    config = find_config(state.config)
    folders = [config.resolve().parent / "logs"] if config.is_file() else []
    folders.append(Path(tempfile.gettempdir()) / "broadcaster")
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    text = f"broadcaster {' '.join(sys.argv[1:])}\n" + "".join(traceback.format_exception(exc))
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


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


def check_role(action: str) -> None:
    """Refuse a user whose role may not ``action`` before a long-running command starts anything (a listener,
    a worker, a server): an auditor's ``run`` must not bind a port or touch the broker first."""
    with acting(action, write=False):
        pass


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
                fail(consent_message(exc))

        return wrapper

    return decorate


def stored_utc(moment: datetime) -> datetime:
    """A stored UTC moment with its zone: SQLite hands ``DateTime(timezone=True)`` columns back naive."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local_moment(option: str, text: str | None, *, end_of_day: bool) -> datetime | None:
    """A date or time an officer typed, in Da Nang time; a bare date as ``--to`` means up to that day's end."""
    if text is None:
        return None
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            moment = datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(), LOCAL_TZ)
        else:
            moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            _("%(option)s '%(text)s': not a date YYYY-MM-DD nor a time YYYY-MM-DDTHH:MM")
            % {"option": option, "text": text}
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_TZ)


def write_export(write: Callable[[TextIO], int], out: Path | None) -> int:
    """Stream an export to ``out`` (written beside it, then renamed: an interrupted export leaves no half
    file under the name asked for) or to stdout; ``write`` returns how many records it wrote."""
    if out is None:
        return write(typer.get_text_stream("stdout"))
    if not out.parent.is_dir():
        raise UserError(
            _("--out %(out)s: there is no folder %(folder)s") % {"out": out, "folder": out.parent}
        )
    with writing_whole(out) as partial, partial.open("w", encoding="utf-8", newline="") as stream:
        return write(stream)


def local_period(start_text: str | None, end_text: str | None) -> tuple[datetime | None, datetime | None]:
    """``--from``/``--to`` as typed (Da Nang dates or times): from inclusive, to exclusive (a bare date: its
    whole day)."""
    start = local_moment("--from", start_text, end_of_day=False)
    end = local_moment("--to", end_text, end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise UserError(
            _("--from %(start)s must be before --to %(end)s") % {"start": start_text, "end": end_text}
        )
    return start, end


def record_settings(context: AppContext, component: str) -> None:
    """At the start of a long-running process: its settings' fingerprint, audited when they changed."""
    from broadcaster.audit.settings_fingerprint import record_fingerprint

    record_fingerprint(context.sessions, context.settings, component=component, clock=context.clock)
