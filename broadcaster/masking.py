"""Personal data shown masked: who sees names, phones and e-mails in full, and how the rest see them.

Auditors check that the engine did what was approved; they need to tell records apart, not to know who a
citizen is. Admins run the installation, not the campaigns. Both see ``090****456``, ``n***@danang.gov.vn``
and initials by default; an admin may ask for the full data with ``--unmasked``, which is audited. Editors and
approvers work with the contacts and the messages themselves and see them as stored on screen; a file
exported (``--format csv|jsonl``) leaves the installation, so it is masked for every role unless an admin
asks ``--unmasked`` (audited). Phones and e-mails are masked by ``channels.masking``, the one masker that log
lines use too.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.db.models import User
from broadcaster.users import require
from broadcaster.vocabulary import Role
from channels.masking import mask_address, mask_email, mask_phone, mask_text

__all__ = [
    "MASKED_BY_DEFAULT",
    "UNMASK_ACTION",
    "mask_address",
    "mask_email",
    "mask_name",
    "mask_phone",
    "mask_text",
    "must_mask",
    "must_mask_export",
    "record_unmasked",
]

MASKED_BY_DEFAULT = frozenset({Role.AUDITOR, Role.ADMIN})
UNMASK_ACTION = "personal_data.unmasked"


def must_mask(user: User, *, unmasked: bool) -> bool:
    """Whether ``user`` sees personal data masked; ``unmasked`` (the flag) is an admin's only."""
    if unmasked:
        require(user, UNMASK_ACTION)
        return False
    return user.role in MASKED_BY_DEFAULT


def must_mask_export(user: User, *, unmasked: bool) -> bool:
    """Whether an export for ``user`` is masked: always, unless an admin asked ``--unmasked``."""
    if unmasked:
        require(user, UNMASK_ACTION)
        return False
    return True


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


def mask_name(name: str | None) -> str | None:
    """``Nguyễn Văn An`` → ``N. V. A.``: initials."""
    if not name:
        return name
    return " ".join(f"{word[0]}." for word in name.split())
