"""What the records pages share: the acting ``User`` behind a viewer, dates typed in a form, and the keyset
page links (``?before=<id>``) that stay fast however many rows a table has."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TextIO
from urllib.parse import urlencode

from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from broadcaster.clock import LOCAL_TZ
from broadcaster.db.models import User
from broadcaster.i18n import gettext as _
from broadcaster.web.auth import SignInRequired, Viewer

PAGE_SIZE = 50


class FieldError(Exception):
    """A form field's value is refused; ``message`` (translated) names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def acting_user(session: Session, viewer: Viewer) -> User:
    """The stored user the services take as actor (the one the CLI resolves from the login)."""
    user = session.get(User, viewer.user_id)
    if user is None or not user.active:
        raise SignInRequired()
    return user


def local_day(field: str, label: str, text: str | None, *, end_of_day: bool) -> datetime | None:
    """A ``<input type=date>`` value as a Da Nang moment: the day's start, or (``end_of_day``) the next day's
    start, the exclusive end the history and audit filters take — as the CLI's ``--from``/``--to``."""
    if not text or not text.strip():
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise FieldError(field, _("%(field)s: give a date as YYYY-MM-DD.") % {"field": label}) from None
    return datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(), LOCAL_TZ)


def optional_int(field: str, label: str, text: str | None) -> int | None:
    if not text or not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError:
        raise FieldError(field, _("%(field)s: give a whole number.") % {"field": label}) from None
    if value < 1:
        raise FieldError(field, _("%(field)s: give a whole number.") % {"field": label})
    return value


@dataclass(frozen=True)
class Keyset:
    """The next page's link of a table read newest first by id: rows with an id below the last shown."""

    next_url: str | None
    first_url: str | None


def keyset(path: str, params: dict[str, str], *, last_id: int | None, full: bool, paged: bool) -> Keyset:
    kept = {key: value for key, value in params.items() if value and key != "before"}
    next_url = f"{path}?{urlencode({**kept, 'before': last_id})}" if full and last_id is not None else None
    first_url = f"{path}?{urlencode(kept)}" if paged else None
    return Keyset(next_url, first_url)


def download(write: Callable[[TextIO], int], *, file_name: str, media_type: str) -> Response:
    """An export as a file to save: written by ``write`` (inside the caller's transaction) to a spooled
    temporary file — memory up to a few MB, then disk — and sent once whole, never half."""
    # Closed by ``chunks`` once sent (or here when the writer fails): it outlives this function.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b")  # noqa: SIM115
    try:
        stream = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        write(stream)
        stream.flush()
        stream.detach()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(64 * 1024):
                yield chunk

    headers = {
        "Content-Disposition": f'attachment; filename="{file_name}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
