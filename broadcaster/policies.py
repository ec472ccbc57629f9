"""Rules that guard four-eyes, kept with the data: read them, and let an admin change them (audited).

A rule in a settings file or an environment variable can be switched off by whoever starts the command
(``BROADCASTER_IDENTITY__ALLOW_ENV_USER=true``, or ``--config`` pointing at a file of one's own with the same
database). Kept in the ``policies`` table, a rule changes only through ``set_policy``: by an admin, with a
reason, before and after in the audit trail. A missing row means the default below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock, local
from broadcaster.db.models import Policy
from broadcaster.errors import UserError
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _

PolicyValue = bool | int

ALLOW_ENV_USER = "allow_env_user"
SECOND_APPROVER_THRESHOLD = "second_approver_threshold"


@dataclass(frozen=True)
class PolicySpec:
    key: str
    default: PolicyValue
    meaning: str

    @property
    def kind(self) -> type[PolicyValue]:
        return bool if isinstance(self.default, bool) else int


POLICIES: Mapping[str, PolicySpec] = {
    spec.key: spec
    for spec in (
        PolicySpec(
            ALLOW_ENV_USER,
            False,
            N_("BROADCASTER_USER may stand in for the OS login (a rehearsal on one machine, the demo)"),
        ),
        PolicySpec(
            SECOND_APPROVER_THRESHOLD,
            5000,
            N_("above this many recipients a version needs a second, different approver"),
        ),
    )
}


@dataclass(frozen=True)
class PolicyState:
    """A rule as it stands: its value, and who last set it (None while it has its default)."""

    key: str
    value: PolicyValue
    default: PolicyValue
    meaning: str
    updated_by: str | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, object]:
        """For ``--json`` and tables: the moment in Da Nang time."""
        return {
            "key": self.key,
            "value": self.value,
            "default": self.default,
            "meaning": self.meaning,
            "updated_by": self.updated_by,
            "updated_at": local(self.updated_at).isoformat() if self.updated_at else None,
        }


class PolicyError(UserError):
    """An unknown rule or a value it cannot take; the message lists what is allowed."""


def spec_of(key: str) -> PolicySpec:
    try:
        return POLICIES[key]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise PolicyError(
            _("no policy '%(key)s'; the policies are: %(known)s") % {"key": key, "known": known}
        ) from None


def get(session: Session, key: str) -> PolicyValue:
    spec = spec_of(key)
    row = session.get(Policy, key)
    return spec.default if row is None else spec.kind(row.value)


def allow_env_user(session: Session) -> bool:
    return bool(get(session, ALLOW_ENV_USER))


def second_approver_threshold(session: Session) -> int:
    return int(get(session, SECOND_APPROVER_THRESHOLD))


def list_policies(session: Session) -> list[PolicyState]:
    rows = {row.key: row for row in session.scalars(select(Policy))}
    states = []
    for key, spec in sorted(POLICIES.items()):
        row = rows.get(key)
        states.append(
            PolicyState(
                key=key,
                value=spec.default if row is None else spec.kind(row.value),
                default=spec.default,
                meaning=spec.meaning,
                updated_by=None if row is None else row.updated_by,
                updated_at=None if row is None else row.updated_at,
            )
        )
    return states


_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_value(key: str, text: str) -> PolicyValue:
    """The typed value of ``text`` for ``key``: a boolean, or a whole number ≥ 0."""
    spec = spec_of(key)
    word = text.strip().lower()
    if spec.kind is bool:
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise PolicyError(_("policy '%(key)s' is true or false, not '%(text)s'") % {"key": key, "text": text})
    if not word.isdigit():
        raise PolicyError(
            _("policy '%(key)s' is a whole number ≥ 0, not '%(text)s'") % {"key": key, "text": text}
        )
    return int(word)


def set_policy(
    session: Session, *, actor: str, key: str, text: str, reason: str, clock: Clock
) -> tuple[PolicyValue, PolicyValue]:
    """Store a rule's new value with an audit entry holding before and after; returns (before, after).

    The caller checks the role (admins only, ``policies.manage``)."""
    if not reason.strip():
        raise PolicyError(_("changing a policy needs a reason (--reason), kept in the audit trail"))
    value = parse_value(key, text)
    before = get(session, key)
    row = session.get(Policy, key)
    if row is None:
        row = Policy(key=key)
        session.add(row)
    row.value, row.updated_by, row.updated_at = value, actor, clock.now()
    audit.record(
        session,
        actor=actor,
        action="policy.set",
        subject_type="policy",
        subject_id=key,
        at=clock.now(),
        reason=reason.strip(),
        details={"from": before, "to": value},
    )
    return before, value
