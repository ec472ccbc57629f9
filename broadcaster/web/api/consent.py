"""The API's consent operation: a withdrawal recorded for a person (``consent withdraw``), which stops the
messages not yet sent to them on that channel for that purpose."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from broadcaster.consent_texts import consent_message
from broadcaster.consent_withdrawals import withdraw_as_staff
from broadcaster.contacts.emails import EmailError
from broadcaster.contacts.phones import PhoneError
from broadcaster.i18n import gettext as _
from broadcaster.web.api.auth import ApiCaller, api_requires
from broadcaster.web.api.errors import PROBLEMS, service_errors
from broadcaster.web.auth import context_of
from broadcaster.web.problems import Problem
from consent.ledger import ConsentError

router = APIRouter(prefix="/consent", tags=["consent"], responses=PROBLEMS)


class WithdrawalIn(BaseModel):
    channel: str | None = Field(default=None, pattern="^(sms|email)$", description="Inferred when absent.")
    address: str = Field(min_length=1, max_length=320, description="A phone number or an e-mail address.")
    purpose: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    notice: str | None = Field(default=None, max_length=64)
    evidence: str | None = Field(default=None, max_length=500)


class WithdrawalOut(BaseModel):
    channel: str
    address: str
    purpose: str
    stopped_messages: int


@router.post("/withdraw", response_model=WithdrawalOut, status_code=201)
def withdraw(
    request: Request, body: WithdrawalIn, caller: ApiCaller = Depends(api_requires("consent.manage"))
) -> WithdrawalOut:
    """Record that the person no longer agrees to ``purpose`` on the channel; effective for every message
    not yet sent."""
    context = context_of(request)
    try:
        with context.sessions.begin() as session, service_errors(field="address"):
            done = withdraw_as_staff(
                session,
                address=body.address,
                channel=body.channel,
                purpose=body.purpose,
                reason=body.reason,
                recorded_by=caller.login,
                clock=context.clock,
                notice=body.notice,
                evidence=body.evidence,
            )
            return WithdrawalOut(
                channel=done.channel,
                address=done.address,
                purpose=body.purpose,
                stopped_messages=done.stopped,
            )
    except (ConsentError, PhoneError, EmailError) as exc:
        field = "purpose" if isinstance(exc, ConsentError) else "address"
        raise Problem(400, "refused", _("Request refused"), consent_message(exc), field=field) from None
