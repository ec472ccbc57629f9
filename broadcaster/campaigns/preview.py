"""What a campaign version would send, without sending: counts, exclusions, SMS encoding and cost, samples."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.campaigns.audience import Exclusion, Screen, iter_audience
from broadcaster.campaigns.messages import Composer, contact_view
from broadcaster.campaigns.store import definition_of
from broadcaster.db.models import CampaignVersion
from broadcaster.settings import Settings


@dataclass
class ChannelPreview:
    channel: str
    provider: str
    template: str
    recipients: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)
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


def preview_version(
    session: Session, version: CampaignVersion, settings: Settings, *, samples: int = 3
) -> Preview:
    definition = definition_of(version)
    composer = Composer(definition=definition, templates=version.templates, settings=settings)
    channels: list[str] = list(definition.channels)
    screen = Screen(channels)
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
    audience = reached = 0
    for page in iter_audience(session, definition.audience, page_size=settings.delivery.plan_page_size):
        audience += len(page)
        reached_ids: set[int] = set()
        for decision in screen.page(session, page):
            item = by_channel[decision.channel]
            if decision.exclusion is not None:
                exclusions[decision.channel][decision.exclusion] += 1
                continue
            view = contact_view(decision.contact)
            text = composer.compose(decision.channel, view, with_html=False)
            if text.too_long:
                exclusions[decision.channel][Exclusion.TOO_LONG] += 1
                continue
            reached_ids.add(decision.contact.id)
            item.recipients += 1
            if decision.channel == "sms":
                assert text.encoding is not None and text.segments is not None
                item.encodings[text.encoding] = item.encodings.get(text.encoding, 0) + 1
                item.segments += text.segments
                item.max_segments = max(item.max_segments, text.segments)
                price = settings.sms.price(carrier=decision.contact.carrier, encoding=text.encoding)
                item.estimated_cost += price * text.segments
            if len(item.samples) < samples:
                item.samples.append(
                    {
                        "to": decision.address,
                        "name": decision.contact.full_name,
                        "subject": text.subject,
                        "text": text.body,
                        "encoding": text.encoding,
                        "segments": text.segments,
                    }
                )
        reached += len(reached_ids)
    for name, counter in exclusions.items():
        by_channel[name].exclusions = dict(counter.most_common())
    return Preview(
        campaign_id=version.campaign_id,
        version=version.number,
        content_hash=version.content_hash,
        status=version.status.value,
        audience_contacts=audience,
        reached_contacts=reached,
        channels=list(by_channel.values()),
    )
