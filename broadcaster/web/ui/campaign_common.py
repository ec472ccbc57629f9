"""What the campaign pages share: the acting user of a request, the services' refusals as a page, the words
for states and statuses, and the notes shown after an action (post, redirect, get)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from broadcaster.db.models import User
from broadcaster.db.rows import required
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.web.auth import Viewer, context_of
from broadcaster.web.templating import render

# Values stored in the database (campaign states, version and run statuses, message statuses, decisions)
# and the words people read for them.
LABELS: dict[str, str] = {
    "draft": N_("draft"),
    "approved": N_("approved"),
    "scheduled": N_("scheduled"),
    "paused": N_("paused"),
    "cancelled": N_("cancelled"),
    "completed": N_("completed"),
    "submitted": N_("submitted"),
    "rejected": N_("rejected"),
    "superseded": N_("superseded"),
    "planning": N_("planning"),
    "sending": N_("sending"),
    "completed_with_held": N_("completed, some held"),
    "queued": N_("queued"),
    "sent": N_("sent"),
    "delivered": N_("delivered"),
    "temporary_failure": N_("temporary failure"),
    "permanent_failure": N_("permanent failure"),
    "technical_failure": N_("technical failure"),
    "unknown": N_("unknown"),
    "suppressed": N_("suppressed"),
    "approve": N_("approve"),
    "reject": N_("reject"),
    "changed": N_("changed"),
    "added": N_("added"),
    "removed": N_("removed"),
}

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


def label(value: str | None) -> str:
    """The translated word for a stored value; an unknown value is shown as it is."""
    if value is None:
        return ""
    return _(LABELS[value]) if value in LABELS else value


def utc(moment: datetime | None) -> datetime | None:
    """A stored UTC moment with its zone (SQLite hands them back naive), ready for ``local_time``."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def page_values() -> dict[str, Any]:
    """What every campaign template uses besides ``render``'s values."""
    return {"label": label}


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
        **page_values(),
    )


def done(campaign_id: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"/campaigns/{campaign_id}?done={what}", status_code=303)
