"""Keys of the REST API: created by an admin for one of the city's systems, shown once, stored hashed.

A key is ``bk_<prefix>_<secret>``: the prefix (8 characters) names it in listings and audit entries, the
secret is 256 random bits. Only the SHA-256 of the whole key is stored: with that much randomness a slow hash
adds nothing, and checking a key must stay cheap (the single-message API answers a thousand requests a
second). A key acts with its role, as the login ``api:<prefix>``, and optionally only on some campaigns.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.clock import Clock
from broadcaster.db.models import ApiKey, User
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import Role

KEY_PREFIX = "bk_"
PREFIX_LENGTH = 8


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str  # the whole key: shown once, never stored


def key_hash(presented: str) -> str:
    return hashlib.sha256(presented.encode()).hexdigest()


def actor_login(key: ApiKey) -> str:
    """The login a key acts as in approvals, runs and the audit log."""
    return f"api:{key.prefix}"


def acting_user(key: ApiKey) -> User:
    """A transient user with the key's role, for the services that take the acting ``User`` (never added to
    the session: keys are not people)."""
    return User(login=actor_login(key), role=key.role, display_name=key.name, active=True)


def create_key(
    session: Session,
    *,
    actor: str,
    name: str,
    role: Role,
    clock: Clock,
    rate_per_minute: int,
    campaigns: list[str] | None = None,
) -> CreatedKey:
    name = name.strip()
    if not name or len(name) > 100:
        raise UserError(_("a key needs a name of 1 to 100 characters (which system uses it)"))
    if rate_per_minute < 1:
        raise UserError(_("the rate must be at least 1 request per minute"))
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        secret_hash=key_hash(secret),
        role=role,
        campaigns=sorted(set(campaigns)) if campaigns else None,
        rate_per_minute=rate_per_minute,
        created_by=actor,
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_key.create",
        subject_type="api_key",
        subject_id=prefix,
        at=clock.now(),
        details={
            "name": name,
            "role": role.value,
            "campaigns": key.campaigns,
            "rate_per_minute": rate_per_minute,
        },
    )
    return CreatedKey(key, secret)


def revoke_key(
    session: Session, *, actor: str, prefix: str, clock: Clock, reason: str | None = None
) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(
            _("no API key '%(prefix)s'; `broadcaster apikeys list` shows them") % {"prefix": prefix}
        )
    if key.revoked_at is not None:
        raise StateError(_("API key '%(prefix)s' was already revoked") % {"prefix": prefix})
    key.revoked_at = clock.now()
    key.revoked_by = actor
    audit.record(
        session,
        actor=actor,
        action="api_key.revoke",
        subject_type="api_key",
        subject_id=prefix,
        at=clock.now(),
        reason=reason,
    )
    return key


def find_key(session: Session, presented: str) -> ApiKey | None:
    """The live key ``presented`` is, or None (unknown, malformed or revoked)."""
    parts = presented.split("_")
    if len(parts) < 3 or not presented.startswith(KEY_PREFIX):
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.secret_hash, key_hash(presented)) else None


def may_use_campaign(campaigns: Sequence[str] | None, campaign_id: str) -> bool:
    """Whether a key bound to ``campaigns`` (None: to none in particular) may act on ``campaign_id``."""
    return campaigns is None or campaign_id in campaigns
