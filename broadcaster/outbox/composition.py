"""Claimed rows become what goes on the wire: an ``OutboundMessage`` per row (an e-mail's personal
unsubscribe link rendered in now, an SMS's parts accepted by an earlier attempt, a push notification's deep
link), and what the recording needs to know about each (``Claimed``). Definitions and composers are cached
per campaign version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.audit.deliveries import AddressHasher
from broadcaster.audit.hashes import content_hash
from broadcaster.campaigns.messages import PUSH_LINK_KEY, Composer, allow_unsubscribe
from broadcaster.campaigns.schema import CampaignDefinition, OnUncertain
from broadcaster.campaigns.store import definition_of
from broadcaster.db.models import CampaignVersion, MessagePart
from broadcaster.db.rows import required
from broadcaster.outbox.fallbacks import PUSH_ACK_DATA_KEY
from broadcaster.outbox.results import Claimed, parse_sms_reference
from broadcaster.outbox.social_planning import social_options
from broadcaster.settings import Settings
from broadcaster.unsubscribe import make_token, unsubscribe_link
from channels.base import Channel, OutboundMessage


class VersionCache:
    """Definitions and composers per campaign version, built once per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._definitions: dict[int, CampaignDefinition] = {}
        self._composers: dict[int, Composer] = {}
        self.address_hasher = AddressHasher(settings.security.erasure_key())

    def definition(self, session: Session, version_id: int) -> CampaignDefinition:
        if version_id not in self._definitions:
            version = required(session, CampaignVersion, version_id, referenced_by="a claimed message")
            self._definitions[version_id] = definition_of(version)
            self._composers[version_id] = Composer(
                definition=self._definitions[version_id],
                templates=dict(version.templates),
                settings=self.settings,
            )
        return self._definitions[version_id]

    def composer(self, session: Session, version_id: int) -> Composer:
        self.definition(session, version_id)
        return self._composers[version_id]


def compose(
    session: Session, rows: Sequence[Any], *, versions: VersionCache, settings: Settings
) -> tuple[dict[int, Claimed], list[OutboundMessage]]:
    """The claimed rows (as ``claims.claim`` returns them), in id order, ready to send and to record."""
    accepted = _accepted_parts(session, rows)
    claimed: dict[int, Claimed] = {}
    outbound: list[OutboundMessage] = []
    # Hashed here, in the pass that composes the window and while the next one is on the wire, so
    # recording it adds no work but the entry (content as planned: an e-mail's personal link left out).
    audited = settings.audit.deliveries
    hash_address = versions.address_hasher
    for row in sorted(rows, key=lambda r: r.id):
        definition = versions.definition(session, row.version_id) if row.version_id else None
        claimed[row.id] = Claimed(
            id=row.id,
            address=row.address,
            channel=row.channel,
            provider=row.provider,
            attempts=row.attempts,
            campaign_id=row.campaign_id,
            on_uncertain=definition.on_uncertain if definition else OnUncertain.HOLD,
            address_hash=hash_address(row.channel, row.address) if audited else None,
            content_hash=content_hash(row.subject, row.body) if audited else None,
        )
        outbound.append(
            outbound_message(
                session, row, definition, accepted.get(row.id, {}), versions=versions, settings=settings
            )
        )
    return claimed, outbound


def outbound_message(
    session: Session,
    row: Any,
    definition: CampaignDefinition | None,
    accepted_parts: dict[int, str],
    *,
    versions: VersionCache,
    settings: Settings,
) -> OutboundMessage:
    html = None
    body = row.body
    unsubscribe = False
    options: dict[str, Any] = {}
    if row.channel == Channel.EMAIL and definition is not None:
        secret = settings.security.unsubscribe_secret
        unsubscribe = allow_unsubscribe(definition, Channel.EMAIL) and bool(secret)
        link = None
        if unsubscribe:
            options["unsubscribe_token"] = make_token(secret, row.id)
            provider_options = settings.provider(row.provider).options()
            link = unsubscribe_link(provider_options, options["unsubscribe_token"])
        composer = versions.composer(session, row.version_id)
        html = composer.html(row.context or None, unsubscribe_url=link)
        if link is not None:  # the link is personal: both parts are rendered with it now
            body = composer.email_text(row.context or None, unsubscribe_url=link, planned=row.body)
    elif row.channel == Channel.PUSH:
        # The push contract (docs/push.md): address = device token, subject = title, body = body, the deep
        # link in options["link"].
        deep_link = (row.context or {}).get(PUSH_LINK_KEY)
        if deep_link:
            options["link"] = deep_link
        # The id the city app acknowledges a shown notification with (POST /city-app/push-shown).
        options["data"] = {PUSH_ACK_DATA_KEY: str(row.id)}
    elif row.channel == Channel.SOCIAL:
        options.update(social_options(row.context or {}, attempts=row.attempts))
    return OutboundMessage(
        message_id=row.id,
        address=row.address,
        body=body,
        subject=row.subject,
        html=html,
        encoding=row.encoding,
        campaign_key=f"v{row.version_id}" if row.version_id else None,
        allow_unsubscribe=unsubscribe,
        options=options,
        sms_reference=parse_sms_reference(row.provider_ref) if row.channel == Channel.SMS else None,
        accepted_parts=accepted_parts,
    )


def _accepted_parts(session: Session, rows: Sequence[Any]) -> dict[int, dict[int, str]]:
    """Per claimed SMS that an earlier attempt sent part of: the parts the SMSC accepted (number -> id)."""
    resumed = [
        row.id
        for row in rows
        if row.channel == Channel.SMS and parse_sms_reference(row.provider_ref) is not None
    ]
    accepted: dict[int, dict[int, str]] = {}
    if resumed:
        parts = session.execute(
            select(MessagePart.message_id, MessagePart.number, MessagePart.provider_id).where(
                MessagePart.message_id.in_(resumed)
            )
        )
        for message_id, number, provider_id in parts:
            accepted.setdefault(message_id, {})[number] = provider_id
    return accepted
