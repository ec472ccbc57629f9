"""What the campaign pages share: the acting user of a request, the services' refusals as a page, and the
notes shown after an action (post, redirect, get). The words for stored codes are ``broadcaster.web.labels``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from broadcaster.db.models import User
from broadcaster.db.rows import required
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.i18n import N_
from broadcaster.web.auth import Viewer, context_of
from broadcaster.web.templating import render

# ?done=… after an action: what the campaign page says happened.
DONE: dict[str, str] = {
    "loaded": N_("The new version was loaded as a draft."),
    "unchanged": N_("The files are the same as the latest version: nothing was loaded."),
    "submitted": N_("The version was submitted for approval."),
    "submitted_to_nobody": N_(
        "The version was submitted, but it reaches 0 recipients: nobody would receive it. Check the audience "
        "and the contacts; the preview shows who is excluded and why."
    ),
    "approved": N_("Your approval was recorded."),
    "rejected": N_("The version was rejected."),
    "scheduled": N_("The campaign is scheduled."),
    "sent": N_("The run was queued: the engine's workers send it (broadcaster run)."),
    "paused": N_("The campaign is paused."),
    "resumed": N_("The campaign is resumed."),
    "cancelled": N_("The campaign is cancelled."),
}


def utc(moment: datetime | None) -> datetime | None:
    """A stored UTC moment with its zone (SQLite hands them back naive), ready for ``local_time``."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@contextmanager
def acting(request: Request, viewer: Viewer, *, write: bool = True) -> Iterator[tuple[Session, User]]:
    """One transaction and the signed-in user's row (the services take a ``User``), committed at the end;
    ``write=False``: a read-only session, for pages (a GET changes nothing)."""
    context = context_of(request)
    factory = context.sessions.begin if write else context.readers
    with factory() as session:
        yield session, required(session, User, viewer.user_id, referenced_by=f"web session of {viewer.login}")


def refused(request: Request, exc: UserError, *, back: str) -> HTMLResponse:
    """A service's refusal as a page: the message says what to do; nothing was changed."""
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, StateError) else 400
    return render(
        request,
        "campaigns/refused.html",
        status_code=status,
        message=str(exc),
        back=back,
    )


def done(campaign_id: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"/campaigns/{campaign_id}?done={what}", status_code=303)
