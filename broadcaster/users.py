"""Users, roles and the permission table every command checks.

The CLI acts as the operating-system login mapped to a stored user; ``BROADCASTER_USER`` may stand in for it
only where the ``allow_env_user`` policy, kept in the database and changed by an admin, allows it (a rehearsal on
one machine, the demo) — never because of a setting or a variable the caller chooses.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broadcaster import audit, policies
from broadcaster.clock import Clock
from broadcaster.db.models import User, WebSession
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import Role

LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,63}$")

# action → roles allowed. Approving is kept apart from editing (four-eyes principle); auditors only read.
PERMISSIONS: Mapping[str, frozenset[Role]] = {
    "users.manage": frozenset({Role.ADMIN}),
    "policies.manage": frozenset({Role.ADMIN}),
    # `init --force` in an existing working directory: restores the default settings and files.
    "workdir.restore_defaults": frozenset({Role.ADMIN}),
    "contacts.import": frozenset({Role.ADMIN, Role.EDITOR}),
    # Staff record a person's consent or its withdrawal (with a reason), e.g. at a service desk.
    "consent.manage": frozenset({Role.ADMIN, Role.EDITOR}),
    # Mark an SMS reply in the staff inbox as handled (with a reason).
    "inbox.handle": frozenset({Role.ADMIN, Role.EDITOR}),
    # Record a communication activity of the plan (a briefing, a dialogue...) with its evidence.
    "activities.record": frozenset({Role.ADMIN, Role.EDITOR}),
    "campaigns.load": frozenset({Role.ADMIN, Role.EDITOR}),
    "campaigns.submit": frozenset({Role.ADMIN, Role.EDITOR}),
    "campaigns.approve": frozenset({Role.APPROVER}),
    "campaigns.schedule": frozenset({Role.ADMIN, Role.EDITOR}),
    "campaigns.send": frozenset({Role.ADMIN, Role.EDITOR}),
    "campaigns.test_send": frozenset({Role.ADMIN, Role.EDITOR, Role.APPROVER}),
    # Anyone responsible may stop a campaign; resuming is the editor's decision again.
    "campaigns.pause": frozenset({Role.ADMIN, Role.EDITOR, Role.APPROVER}),
    "campaigns.resume": frozenset({Role.ADMIN, Role.EDITOR}),
    "campaigns.cancel": frozenset({Role.ADMIN, Role.EDITOR, Role.APPROVER}),
    "engine.run": frozenset({Role.ADMIN, Role.EDITOR}),
    # Release, retry or drop messages by hand (held, unknown, failed, queued).
    "messages.operate": frozenset({Role.ADMIN, Role.EDITOR}),
    # Names, phones and e-mails in full where they are masked by default (broadcaster.masking); audited.
    "personal_data.unmasked": frozenset({Role.ADMIN}),
    # Data-subject requests (PDP Law): the export shows everything in full, so only the roles that may see
    # personal data; erasing cannot be undone, so only an admin.
    "subjects.export": frozenset({Role.ADMIN, Role.EDITOR}),
    "subjects.erase": frozenset({Role.ADMIN}),
    # Communications reports (broadcaster report): they rebuild the open days' rollups, derived data only.
    "reports.read": frozenset({Role.ADMIN, Role.EDITOR, Role.AUDITOR}),
    "reports.rollup": frozenset({Role.ADMIN, Role.EDITOR}),
    # Rebuilding the frozen days of a closed period changes what was reported: an admin's, audited.
    "reports.refreeze": frozenset({Role.ADMIN}),
    # Blanking personal data past [retention] personal_data_days by hand (the tick does it daily anyway).
    "retention.run": frozenset({Role.ADMIN}),
    # A copy of the whole database (``broadcaster backup``) holds every person's data.
    "backup.run": frozenset({Role.ADMIN}),
    # Keys of the REST API (each bound to a role): created, listed and revoked by an admin.
    "api_keys.manage": frozenset({Role.ADMIN}),
    "read": frozenset({Role.ADMIN, Role.EDITOR, Role.APPROVER, Role.AUDITOR}),
}


class IdentityError(UserError):
    """The person at the keyboard is not a known, active user."""


class PermissionDenied(UserError):
    def __init__(self, user: User, action: str) -> None:
        allowed = ", ".join(sorted(role.value for role in PERMISSIONS[action]))
        super().__init__(
            _(
                "user '%(login)s' has role '%(role)s'; '%(action)s' needs one of: %(allowed)s. "
                "Ask an admin (`broadcaster users set-role`)."
            )
            % {"login": user.login, "role": user.role.value, "action": action, "allowed": allowed}
        )


def current_login(session: Session) -> str:
    override = os.environ.get("BROADCASTER_USER")
    if override:
        if not policies.allow_env_user(session):
            raise IdentityError(
                _(
                    "BROADCASTER_USER is set but this installation does not allow it (policy allow_env_user "
                    "is false); unset it to act as your own login. For a rehearsal on one machine an admin "
                    "runs `broadcaster policy set allow_env_user true --reason …`"
                )
            )
        return override
    return getpass.getuser()


def resolve_actor(session: Session) -> User:
    login = current_login(session)
    user = session.scalar(select(User).where(User.login == login))
    if user is None:
        raise IdentityError(
            _(
                "login '%(login)s' is not a Broadcaster user; an admin adds it with "
                "`broadcaster users add %(login)s --role editor`"
            )
            % {"login": login}
        )
    if not user.active:
        raise IdentityError(_("user '%(login)s' is deactivated") % {"login": login})
    return user


def require(user: User, action: str) -> None:
    if user.role not in PERMISSIONS[action]:
        raise PermissionDenied(user, action)


def validate_login(login: str) -> str:
    if not LOGIN_RE.match(login):
        raise UserError(
            _(
                "login '%(login)s' is not valid: use lower-case letters, digits, '_', '.', '-' (max 64), "
                "starting with a letter or '_'"
            )
            % {"login": login}
        )
    return login


def add_user(
    session: Session,
    *,
    actor: str,
    login: str,
    role: Role,
    clock: Clock,
    display_name: str | None = None,
) -> User:
    validate_login(login)
    if session.scalar(select(User).where(User.login == login)) is not None:
        raise StateError(
            _("user '%(login)s' already exists; use `broadcaster users set-role %(login)s ROLE`")
            % {"login": login}
        )
    user = User(login=login, role=role, display_name=display_name, created_at=clock.now(), created_by=actor)
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.add",
        subject_type="user",
        subject_id=login,
        at=clock.now(),
        details={"role": role.value},
    )
    return user


def set_role(session: Session, *, actor: str, login: str, role: Role, clock: Clock) -> User:
    user = session.scalar(select(User).where(User.login == login))
    if user is None:
        raise NotFound(
            _("no user '%(login)s'; add it with `broadcaster users add %(login)s --role %(role)s`")
            % {"login": login, "role": role.value}
        )
    if user.role == Role.ADMIN and role != Role.ADMIN and _admin_count(session) == 1:
        raise StateError(_("'%(login)s' is the last admin; make someone else admin first") % {"login": login})
    old = user.role
    user.role = role
    audit.record(
        session,
        actor=actor,
        action="user.set_role",
        subject_type="user",
        subject_id=login,
        at=clock.now(),
        details={"from": old.value, "to": role.value},
    )
    return user


def _admin_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN)) or 0)


# argon2id with the library's defaults (RFC 9106's second recommended option: 64 MiB, 3 passes).
_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 12


def set_password(session: Session, *, actor: str, login: str, password: str, clock: Clock) -> User:
    """Set a user's web sign-in password; ends their open browser sessions and lifts a lock-out."""
    user = session.scalar(select(User).where(User.login == login))
    if user is None:
        raise NotFound(
            _("no user '%(login)s'; add it with `broadcaster users add %(login)s --role %(role)s`")
            % {"login": login, "role": "editor"}
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(
            _("the password must have at least %(count)s characters") % {"count": MIN_PASSWORD_LENGTH}
        )
    if password.strip().lower() == login.lower():
        raise UserError(_("the password must not be the login"))
    now = clock.now()
    user.password_hash = _HASHER.hash(password)
    user.password_changed_at = now
    user.failed_signins = 0
    user.locked_until = None
    session.execute(
        update(WebSession)
        .where(WebSession.login == login, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    audit.record(
        session, actor=actor, action="user.password_set", subject_type="user", subject_id=login, at=now
    )
    return user


def password_matches(user: User, password: str) -> bool:
    """Constant-time check of ``password`` against the stored hash; False when the user has none."""
    if not user.password_hash:
        return False
    try:
        return _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def deactivate(session: Session, *, actor: str, login: str, clock: Clock) -> User:
    """Stop a user from signing in or acting (kept, with their history: entries name them); ends their open
    browser sessions. The last active admin cannot be deactivated, nor can anyone deactivate themselves."""
    user = session.scalar(select(User).where(User.login == login))
    if user is None:
        raise NotFound(_("no user '%(login)s'") % {"login": login})
    if not user.active:
        raise StateError(_("user '%(login)s' is already deactivated") % {"login": login})
    if login == actor:
        raise StateError(_("you cannot deactivate yourself; ask another admin"))
    active_admins = session.scalar(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active.is_(True))
    )
    if user.role == Role.ADMIN and (active_admins or 0) <= 1:
        raise StateError(
            _("'%(login)s' is the last active admin; make someone else admin first") % {"login": login}
        )
    now = clock.now()
    user.active = False
    session.execute(
        update(WebSession)
        .where(WebSession.login == login, WebSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    audit.record(
        session, actor=actor, action="user.deactivate", subject_type="user", subject_id=login, at=now
    )
    return user
