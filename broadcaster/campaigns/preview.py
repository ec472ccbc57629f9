"""What a campaign version would send, without sending: counts, exclusions, SMS encoding and cost, samples."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from broadcaster.campaigns.audience import (
    Decision,
    EarlierInAudience,
    Screen,
    iter_audience_rows,
    too_big_reason,
)
from broadcaster.campaigns.messages import Composer, MessageText, allow_unsubscribe, contact_view
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.campaigns.store import definition_of
from broadcaster.db.models import CampaignVersion, Contact
from broadcaster.provider_shapes import address_fields, targeted_channels
from broadcaster.settings import Settings
from broadcaster.unsubscribe import unsubscribe_link
from channels.base import Channel

# Every mail gets its own opt-out token at send time; the samples show where it goes.
PREVIEW_TOKEN = "<token>"  # noqa: S105  a placeholder shown in samples, not a secret


@dataclass
class ChannelPreview:
    channel: str
    provider: str
    template: str
    recipients: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)  # counted in recipients: sent, but later, and why
    encodings: dict[str, int] = field(default_factory=dict)  # SMS: messages per encoding
    segments: int = 0  # SMS: parts in total
    max_segments: int = 0
    estimated_cost: float = 0.0
    currency: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Preview:
    campaign_id: str
    version: int
    content_hash: str
    status: str
    audience_contacts: int
    reached_contacts: int  # contacts that get at least one message
    channels: list[ChannelPreview]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def opt_out_link(definition: CampaignDefinition, settings: Settings) -> str | None:
    """The opt-out link an e-mail sample shows (with ``PREVIEW_TOKEN``), or None when none is offered."""
    spec = definition.channels.get("email")
    if (
        spec is None
        or not allow_unsubscribe(definition, Channel.EMAIL)
        or not settings.security.unsubscribe_secret
    ):
        return None
    return unsubscribe_link(settings.provider(spec.provider).options(), PREVIEW_TOKEN)


def preview_version(
    session: Session, version: CampaignVersion, settings: Settings, *, now: datetime, samples: int = 3
) -> Preview:
    """What planning the version at ``now`` would give (the consent policy's hours and caps are judged at
    ``now``, or when the campaign's send window next opens)."""
    definition = definition_of(version)
    composer = Composer(definition=definition, templates=version.templates, settings=settings)
    channels: list[str] = list(definition.channels)
    used = {str(name): spec.provider for name, spec in definition.channels.items()}
    targeted = targeted_channels(settings.providers, used)
    tz = definition.zone(settings.timezone)
    screened = [name for name in channels if name not in targeted]
    fields = address_fields(settings.providers, used)
    # A second contact with an address is found among the earlier contacts, not in a set of all (push
    # devices excepted: the screen keeps those).
    earlier = EarlierInAudience(definition.audience, fields)
    screen = Screen(
        screened,
        purpose=definition.purpose.value,
        campaign_id=definition.id,
        tz=tz,
        policy=settings.consent.policy(),
        erasure_key=settings.security.erasure_key(),
        address_fields=fields,
        planned_keys=earlier,
    )
    window = definition.schedule.window if definition.schedule else None
    at = window.next_open(now, tz) if window is not None and not window.contains(now, tz) else now
    by_channel: dict[str, ChannelPreview] = {
        name: ChannelPreview(
            channel=name,
            provider=spec.provider,
            template=spec.template,
            currency=settings.sms.currency if name == "sms" else "",
        )
        for name, spec in definition.channels.items()
    }
    exclusions: dict[str, Counter[str]] = {name: Counter[str]() for name in channels}
    deferred: dict[str, Counter[str]] = {name: Counter[str]() for name in channels}
    link = opt_out_link(definition, settings)
    audience = reached = 0
    for page in iter_audience_rows(session, definition.audience, page_size=settings.delivery.plan_page_size):
        audience += len(page)
        reached_ids: set[int] = set()
        # Rows, not ORM objects: the screen and the composer read only their named fields.
        contacts = cast("list[Contact]", page)
        decisions = screen.page(session, contacts, at=at)
        earlier.met(contacts, [name for name in screened if name != Channel.PUSH])
        for decision in decisions:
            item = by_channel[decision.channel]
            if decision.exclusion is not None:
                exclusions[decision.channel][decision.exclusion] += 1
                continue
            sampled = len(item.samples) < samples
            # An e-mail's text changes no count (no parts, no size limit): rendered for the samples only.
            text = (
                composer.compose_contact(decision.channel, decision.contact)
                if sampled or decision.channel != Channel.EMAIL
                else None
            )
            if text is not None and (text.too_long or text.too_large):
                too_big = too_big_reason(decision.channel, text.too_long)
                exclusions[decision.channel][too_big] += 1
                continue
            reached_ids.add(decision.contact.id)
            item.recipients += 1
            if decision.deferral is not None:
                deferred[decision.channel][decision.deferral] += 1
            if decision.channel == Channel.SMS:
                assert text is not None and text.encoding is not None and text.segments is not None
                item.encodings[text.encoding] = item.encodings.get(text.encoding, 0) + 1
                item.segments += text.segments
                item.max_segments = max(item.max_segments, text.segments)
                price = settings.sms.price(carrier=decision.contact.carrier, encoding=text.encoding)
                item.estimated_cost += price * text.segments
            if sampled and text is not None:
                item.samples.append(_sample(decision, text, composer, link))
        reached += len(reached_ids)
    for name in targeted:
        _preview_targets(by_channel[name], definition.channels[name].targets or [], composer, samples)  # type: ignore[index]
    for name, counter in exclusions.items():
        by_channel[name].exclusions = dict(counter.most_common())
        by_channel[name].deferred = dict(deferred[name].most_common())
    return Preview(
        campaign_id=version.campaign_id,
        version=version.number,
        content_hash=version.content_hash,
        status=version.status.value,
        audience_contacts=audience,
        reached_contacts=reached,
        channels=list(by_channel.values()),
    )


def _sample(decision: Decision, text: MessageText, composer: Composer, link: str | None) -> dict[str, Any]:
    view = contact_view(decision.contact)
    body = text.body
    if decision.channel == Channel.EMAIL and link is not None:
        body = composer.email_text(view, unsubscribe_url=link)
    return {
        "to": decision.address,
        "name": decision.contact.full_name,
        "subject": text.subject,
        "text": body,
        "encoding": text.encoding,
        "segments": text.segments,
        "link": text.link,  # push: the deep link the notification opens; social: the post's
        "image": text.image,  # social: a Page post's image
        "template_id": text.template_id,  # social: the approved ZNS template
        "template_data": text.template_data,
        # The e-mail's HTML part as it would be sent (None: the template has none).
        "html": composer.html(view, unsubscribe_url=link) if decision.channel == Channel.EMAIL else None,
    }


def _preview_targets(item: ChannelPreview, targets: list[str], composer: Composer, samples: int) -> None:
    """A channel posted to named targets: one message per target, rendered without a contact."""
    text = composer.compose(item.channel, None, with_html=False)
    item.recipients = len(targets)
    for target in targets[:samples]:
        item.samples.append(
            {
                "to": target,
                "name": None,
                "subject": None,
                "text": text.body,
                "link": text.link,
                "image": text.image,
            }
        )
