"""Device tokens: the push devices of each contact, registered by the city app, forgotten when a provider
says a token is no longer valid (docs/push.md, "Engine side").

One row per token, several per person; a token moves to the contact who registered it last (a shared or
resold phone), never belongs to two.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from broadcaster.db.models import DeviceToken
from channels.base import Channel
from consent.models import Suppression
from consent.suppression import address_key

__all__ = [
    "TOKEN",
    "TOKEN_PATTERN",
    "Platform",
    "Registration",
    "forget_token",
    "lift_rejection",
    "register_token",
    "tokens_of",
]


# FCM registration tokens (letters, digits, ":", "-", "_"), APNs device tokens (hex): 16 to 320 characters,
# what a message address holds.
TOKEN_PATTERN = r"^[A-Za-z0-9_:.\-]{16,320}$"  # noqa: S105  a pattern, not a secret
TOKEN = re.compile(TOKEN_PATTERN)


class Platform(StrEnum):
    """Where the city app runs: FCM serves android and web, APNs (or FCM's APNs bridge) serves ios."""

    ANDROID = "android"
    IOS = "ios"
    WEB = "web"


class Registration(StrEnum):
    """What registering a token did."""

    CREATED = "created"
    REFRESHED = "refreshed"
    """Known already: its platform, app version and update time are brought up to date."""
    MOVED = "moved"
    """Known for another contact: it now belongs to this one."""


def tokens_of(session: Session, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each contact's tokens, oldest registration first (one query per page of contacts)."""
    found: dict[int, list[str]] = {}
    if not contact_ids:
        return found
    rows = session.execute(
        select(DeviceToken.contact_id, DeviceToken.token)
        .where(DeviceToken.contact_id.in_(list(contact_ids)))
        .order_by(DeviceToken.contact_id, DeviceToken.id)
    )
    for contact_id, token in rows:
        found.setdefault(contact_id, []).append(token)
    return found


def register_token(
    session: Session,
    *,
    contact_id: int,
    token: str,
    platform: Platform,
    app_version: str | None,
    now: datetime,
) -> Registration:
    """Create or refresh ``token`` for ``contact_id`` in the caller's transaction.

    ``INSERT … ON CONFLICT DO NOTHING`` first: two registrations of one new token racing each other (the app
    retrying) both end in one row, never in a unique-key error."""
    table = DeviceToken.__table__
    assert isinstance(table, Table)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    created = session.execute(
        insert(table)
        .values(
            contact_id=contact_id,
            token=token,
            platform=platform.value,
            app_version=app_version,
            registered_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["token"])
        .returning(table.c.id)  # a row only when inserted (rowcount is not portable with RETURNING)
    )
    if created.scalar_one_or_none() is not None:
        return Registration.CREATED
    row = session.scalar(select(DeviceToken).where(DeviceToken.token == token).with_for_update())
    if row is None:  # deleted between the two statements (a provider rejected it meanwhile): insert it anew
        return register_token(
            session, contact_id=contact_id, token=token, platform=platform, app_version=app_version, now=now
        )
    outcome = Registration.REFRESHED if row.contact_id == contact_id else Registration.MOVED
    row.contact_id = contact_id
    row.platform = platform.value
    row.app_version = app_version
    row.updated_at = now
    if outcome is Registration.MOVED:
        row.registered_at = now
    return outcome


def lift_rejection(session: Session, *, token: str) -> bool:
    """Remove the push suppression of ``token`` (a provider once rejected it, ``outbox/results.py``): the app
    registering it again means the provider issued it anew. Returns whether there was one."""
    result = session.execute(
        delete(Suppression)
        .where(Suppression.channel == Channel.PUSH, Suppression.address == address_key(Channel.PUSH, token))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def forget_token(session: Session, *, token: str, contact_id: int | None = None) -> bool:
    """Delete ``token`` (only when it is ``contact_id``'s, if given); False when there was no such row."""
    statement = delete(DeviceToken).where(DeviceToken.token == token)
    if contact_id is not None:
        statement = statement.where(DeviceToken.contact_id == contact_id)
    result = session.execute(statement.execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))
