"""Personal data shown masked: who sees names, phones and e-mails in full, and how the rest see them.

Auditors check that the engine did what was approved; they need to tell records apart, not to know who a
citizen is. Admins run the installation, not the campaigns. Both see ``090****456``, ``n***@danang.gov.vn``
and initials by default; an admin may ask for the full data with ``--unmasked``, which is audited. Editors and
approvers work with the contacts and the messages themselves and see them as stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.db.models import User
from broadcaster.users import require
from broadcaster.vocabulary import Role

MASKED_BY_DEFAULT = frozenset({Role.AUDITOR, Role.ADMIN})
UNMASK_ACTION = "personal_data.unmasked"

# Addresses inside free text (a provider's reply quoting the recipient, in a message's ``reason``).
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"\+?\d{9,15}")


def must_mask(user: User, *, unmasked: bool) -> bool:
    """Whether ``user`` sees personal data masked; ``unmasked`` (the flag) is an admin's only."""
    if unmasked:
        require(user, UNMASK_ACTION)
        return False
    return user.role in MASKED_BY_DEFAULT


def record_unmasked(
    session: Session, *, actor: User, what: str, filters: Mapping[str, object], shown: int, clock: Clock
) -> None:
    """The audit entry of an unmasked listing: who saw how many of which records, asked how."""
    audit.record(
        session,
        actor=actor.login,
        action=UNMASK_ACTION,
        subject_type=what,
        subject_id="listing",
        at=clock.now(),
        details={"filters": dict(filters), "shown": shown},
    )


def mask_phone(phone: str | None) -> str | None:
    """``+84901234456`` → ``090****456``: Vietnamese numbers in their national form, first 3 and last 3 kept."""
    if not phone:
        return phone
    shown = "0" + phone[3:] if phone.startswith("+84") else phone
    if len(shown) <= 6:
        return "*" * len(shown)
    return shown[:3] + "*" * (len(shown) - 6) + shown[-3:]


def mask_email(email: str | None) -> str | None:
    """``nguyen.an@danang.gov.vn`` → ``n***@danang.gov.vn``: the domain says the organisation, not the person."""
    if not email:
        return email
    local, at, domain = email.rpartition("@")
    if not at:
        return email[:1] + "***"
    return f"{local[:1]}***@{domain}"


def mask_name(name: str | None) -> str | None:
    """``Nguyễn Văn An`` → ``N. V. A.``: initials."""
    if not name:
        return name
    return " ".join(f"{word[0]}." for word in name.split())


def mask_address(address: str | None) -> str | None:
    """A message's address, an e-mail or a phone number."""
    if address and "@" in address:
        return mask_email(address)
    return mask_phone(address)


def mask_text(text: str | None) -> str | None:
    """Free text with every e-mail address and phone number in it masked."""
    if not text:
        return text
    text = _EMAIL_IN_TEXT.sub(lambda found: mask_email(found.group()) or "", text)
    return _PHONE_IN_TEXT.sub(lambda found: mask_phone(found.group()) or "", text)
