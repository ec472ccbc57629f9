"""A person's page: the contact, their consent history per address (the ledger ``consent show`` reads), their
push devices (docs/push.md) and the staff opt-out form (``consent.manage``, a reason required), which records the withdrawal and stops their
unsent messages through the service ``consent withdraw`` uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import masking
from broadcaster.campaigns.audience import push_person
from broadcaster.consent_texts import consent_message
from broadcaster.consent_withdrawals import withdraw_as_staff
from broadcaster.db.models import Contact, DeviceToken
from broadcaster.errors import NotFound, UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.web.auth import Viewer, context_of, requires
from broadcaster.web.labels import CHANNEL, PURPOSE
from broadcaster.web.templating import render
from broadcaster.web.ui.common import acting_user
from broadcaster.web.ui.contacts import shown_contact
from channels.base import Channel
from consent import ledger
from consent.ledger import ConsentError

router = APIRouter()

# The purposes in the ledger's order (the opt-out form's choices) and the channels: broadcaster.web.labels.
PURPOSE_LABELS = {purpose: PURPOSE[purpose] for purpose in ledger.PURPOSES}
CHANNEL_LABELS = {channel: CHANNEL[channel] for channel in ("sms", "email", "push")}
ACTION_LABELS = {ledger.GRANT: N_("Agreed"), ledger.WITHDRAW: N_("Withdrew consent")}
SOURCE_LABELS = {
    "web_form": N_("Web form"),
    "sms_keyword": N_("SMS keyword"),
    "email_link": N_("Unsubscribe link in an e-mail"),
    "import": N_("Contacts import"),
    "staff": N_("Recorded by staff"),
    "city_app": N_("The city's app"),
    "migration": N_("Migrated from old data"),
}
STATE_LABELS = {True: N_("Agreed"), False: N_("Refused"), None: N_("Not recorded")}
DEVICE_SHOWN_CHARS = 8


def _addresses(session: Session, contact: Contact) -> list[tuple[str, str]]:
    """(channel, ledger address) of the person: phone and e-mail, and push under the person's key once they
    have a device (docs/push.md, "Consent")."""
    found = [(channel, key) for channel, key in (("sms", contact.phone), ("email", contact.email)) if key]
    if (
        session.scalar(select(DeviceToken.id).where(DeviceToken.contact_id == contact.id).limit(1))
        is not None
    ):
        found.append((Channel.PUSH, push_person(contact)))
    return found


def _person(request: Request, viewer: Viewer, contact_id: int) -> dict[str, Any]:
    context = context_of(request)
    with context.readers() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(str(contact_id))
        mask = masking.must_mask(acting_user(session, viewer), unmasked=False)
        ledgers = []
        for channel, key in _addresses(session, contact):
            ledgers.append(
                {
                    "channel": channel,
                    "address": (masking.mask_address(key) or "") if mask else key,
                    "states": [
                        (purpose, ledger.current(session, channel, key, purpose))
                        for purpose in ledger.PURPOSES
                    ],
                    "events": [
                        {
                            "at": e.recorded_at,
                            "purpose": e.purpose,
                            "action": e.action,
                            "source": e.source,
                            "notice": e.notice_version,
                            "reason": masking.mask_text(e.reason) if mask and e.reason else e.reason,
                            "by": e.recorded_by,
                        }
                        for e in ledger.history(session, channel, key)
                    ],
                }
            )
        devices = [
            {
                # The start of the token tells devices apart; the whole of it is the device's credential.
                "token": device.token[:DEVICE_SHOWN_CHARS] + "…",
                "platform": device.platform,
                "app_version": device.app_version,
                "registered_at": device.registered_at,
                "updated_at": device.updated_at,
            }
            for device in session.scalars(
                select(DeviceToken).where(DeviceToken.contact_id == contact.id).order_by(DeviceToken.id)
            )
        ]
        return {"contact": shown_contact(contact, mask=mask), "ledgers": ledgers, "devices": devices}


def _page(
    request: Request, viewer: Viewer, contact_id: int, *, status_code: int = 200, **extra: Any
) -> Response:
    try:
        person = _person(request, viewer, contact_id)
    except NotFound:
        return render(
            request, "error.html", status_code=404, title=_("Not found"), message=_("No such contact.")
        )
    labels = {
        "purposes": PURPOSE_LABELS,
        "channels": CHANNEL_LABELS,
        "actions": ACTION_LABELS,
        "sources": SOURCE_LABELS,
        "states": STATE_LABELS,
    }
    values = {"error": None, "done": request.query_params.get("done"), **extra}
    return render(request, "contacts/person.html", status_code=status_code, labels=labels, **person, **values)


@router.get("/contacts/{contact_id}", response_class=HTMLResponse)
def person_page(
    request: Request, viewer: Annotated[Viewer, Depends(requires("read"))], contact_id: int
) -> Response:
    return _page(request, viewer, contact_id)


@router.post("/contacts/{contact_id}/withdraw", response_class=HTMLResponse)
def withdraw(
    request: Request,
    viewer: Annotated[Viewer, Depends(requires("consent.manage"))],
    contact_id: int,
    channel: Annotated[str, Form()] = "",
    purpose: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    context = context_of(request)
    problem = None
    if purpose not in ledger.PURPOSES:
        problem = _("Purpose: choose one of the list.")
    elif not reason.strip():
        problem = _("Reason: say why staff records this withdrawal.")
    if problem is None:
        with context.sessions.begin() as session:
            contact = session.get(Contact, contact_id)
            if contact is None:
                return _page(request, viewer, contact_id)
            address = dict(_addresses(session, contact)).get(channel)
            if address is None:
                problem = _("Channel: this contact has no address on that channel.")
            else:
                try:
                    withdrawal = withdraw_as_staff(
                        session,
                        channel=channel,
                        address=address,
                        purpose=purpose,
                        reason=reason.strip(),
                        recorded_by=acting_user(session, viewer).login,
                        clock=context.clock,
                    )
                except (ConsentError, UserError) as exc:
                    problem = consent_message(exc)
                    session.rollback()
                else:
                    stopped = withdrawal.stopped
                    return RedirectResponse(f"/contacts/{contact_id}?done={stopped}", status_code=303)
    return _page(request, viewer, contact_id, status_code=422, error=problem, reason=reason)
