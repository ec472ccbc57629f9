"""Turning one contact into one message text: the rendering context, the SMS text rules and the push limits.

Shared by preview, test sends and the planner, so what is previewed is what is sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from broadcaster.campaigns.schema import CampaignDefinition, ChannelSpec, Purpose
from broadcaster.db.models import Contact
from broadcaster.provider_shapes import SOCIAL_POST_MAX_CHARS, capabilities_of
from broadcaster.push_payload import measure
from broadcaster.rendering import CONTACT_FIELDS, Renderer, build_context, contact_fields, first_name
from broadcaster.settings import Settings
from channels.base import Channel
from channels.sms.encoding import analyse, normalize, unaccent

# The key of a stored rendering context (``Message.context``) that holds the ``message`` root: the
# personalisation of a single message sent through the API (broadcaster/outbox/single.py).
MESSAGE_KEY = "message"

# The key of a push message's stored context that holds its deep link as rendered at planning (the outbound
# message's ``options["link"]``, docs/push.md).
PUSH_LINK_KEY = "link"

# How many distinct renderings a composer keeps (``Composer.compose``): a campaign whose template reads no
# contact field, or only a few, gives the same text to many contacts; past this many it starts afresh, so a
# template that names every contact costs a bounded dictionary, not one entry per contact. An e-mail that
# greets by full name: a city's audience repeats a few tens of thousands of them at most, and an entry (the
# text and subject) is about 2 KiB, so this many stay under 40 MiB.
COMPOSED_KEPT = 16384

_ABSENT = object()  # a field the contact's mapping lacks: rendered, not looked up

# Added to the text/plain part when its template does not show the opt-out link itself.
OPT_OUT_LINE = "Hủy đăng ký nhận tin: {url}"


def push_context(link: str | None) -> dict[str, Any]:
    """What a push message stores as its context: its deep link as rendered, when it has one."""
    return {PUSH_LINK_KEY: link} if link else {}


def allow_unsubscribe(definition: CampaignDefinition, channel: str) -> bool:
    spec = definition.channels[channel]  # type: ignore[index]
    if spec.allow_unsubscribe is not None:
        return spec.allow_unsubscribe
    # Official-duty mail to civil servants cannot be declined; information and advertising can.
    return definition.purpose != Purpose.OFFICIAL_DUTY


def contact_view(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {
        "external_id": contact.external_id,
        "full_name": contact.full_name,
        "first_name": first_name(contact.full_name),
        "phone": contact.phone,
        "email": contact.email,
        "segment": contact.segment,
        "agency": contact.agency,
        "district": contact.district,
        "ward": contact.ward,
        "language": contact.language,
        "tags": list(contact.tags or []),
        "attributes": dict(contact.attributes or {}),
    }


class _ViewFields(Mapping[str, Any]):
    """``contact_view(contact)``, each field read only when asked: the few a template's text depends on are
    enough to find a text already composed (``Composer.compose_contact``)."""

    def __init__(self, contact: Contact) -> None:
        self._contact = contact

    def __getitem__(self, name: str) -> Any:
        if name not in CONTACT_FIELDS:
            raise KeyError(name)
        if name == "first_name":
            return first_name(self._contact.full_name)
        return getattr(self._contact, name)

    def __iter__(self) -> Iterator[str]:
        return iter(CONTACT_FIELDS)

    def __len__(self) -> int:
        return len(CONTACT_FIELDS)


@dataclass(frozen=True)
class MessageText:
    subject: str | None
    body: str  # SMS: final text (NFC, unaccented when asked); e-mail: the text/plain part
    html: str | None
    encoding: str | None = None
    segments: int | None = None
    too_long: bool = False  # SMS: more parts than the channel's max_segments (or settings' sms.max_segments)
    link: str | None = (
        None  # push: the deep link (``options["link"]`` of the outbound message); social: the post's link
    )
    image: str | None = None  # social: a Page post's image URL (``options["image"]``)
    template_id: str | None = (
        None  # social, approved templates: the ZNS template (``options["template_id"]``)
    )
    template_data: dict[str, str] | None = None  # its parameters, rendered for the person
    too_large: bool = False  # push: past the payload or text limits of ``broadcaster.push_payload``


class Composer:
    """Renders one campaign version for many contacts; built once per version."""

    def __init__(
        self, *, definition: CampaignDefinition, templates: dict[str, str], settings: Settings
    ) -> None:
        self.definition = definition
        self.renderer = Renderer(templates, limits=settings.rendering)
        self.settings = settings
        self._campaign = definition.template_context()
        self._org = settings.org.model_dump()
        # Whether any template of the version may print the opt-out link itself; when none can, the text
        # part rendered at planning is the one to send, with the standard line added (no render per mail).
        self._templates_show_link = any("unsubscribe_url" in source for source in templates.values())
        self._templates = templates
        self._fields: dict[str, tuple[str, ...] | None] = {}
        self._composed: dict[tuple[object, ...], MessageText] = {}

    def context(
        self, contact: dict[str, Any] | None, *, unsubscribe_url: str | None = None
    ) -> dict[str, Any]:
        """``contact`` may carry ``MESSAGE_KEY`` (a single message's personalisation): it becomes the
        ``message`` root, so the HTML re-rendered at send time from the stored context sees it too."""
        message: dict[str, Any] | None = None
        if contact is not None and MESSAGE_KEY in contact:
            contact = dict(contact)
            message = contact.pop(MESSAGE_KEY)
        return build_context(
            contact=contact,
            message=message,
            campaign=self._campaign,
            org=self._org,
            variables=self.definition.variables,
            unsubscribe_url=unsubscribe_url,
        )

    def compose(self, channel: str, contact: dict[str, Any] | None, *, with_html: bool = True) -> MessageText:
        """The message ``contact`` gets on ``channel``: rendered once per distinct value of the contact
        fields the template reads (``rendering.contact_fields``), the same text for the same values."""
        key = self._same_text_key(channel, contact, with_html)
        if key is None:
            return self._compose(channel, contact, with_html=with_html)
        found = self._composed.get(key)
        if found is None:
            found = self._compose(channel, contact, with_html=with_html)
            if len(self._composed) >= COMPOSED_KEPT:
                self._composed.clear()
            self._composed[key] = found
        return found

    def compose_contact(self, channel: str, contact: Contact) -> MessageText:
        """``compose(channel, contact_view(contact), with_html=False)``, the view built only when the text is
        not yet known for the values of the fields the template reads (a city's audience: most are known)."""
        key = self._same_text_key(channel, _ViewFields(contact), False)
        found = self._composed.get(key) if key is not None else None
        return found or self.compose(channel, contact_view(contact), with_html=False)

    def _same_text_key(
        self, channel: str, contact: Mapping[str, Any] | None, with_html: bool
    ) -> tuple[object, ...] | None:
        """What the rendering depends on, when that is a few text fields of the contact (None: render)."""
        if contact is None or channel == Channel.SOCIAL or MESSAGE_KEY in contact:
            return None  # a ZNS message's parameters, a single message's personalisation: not analysed
        if channel not in self._fields:
            spec: ChannelSpec = self.definition.channels[channel]  # type: ignore[index]
            # compose never passes an unsubscribe link: the same (None) for every contact.
            found = contact_fields(
                self._templates, spec.template, channel, also_fixed=frozenset({"unsubscribe_url"})
            )
            self._fields[channel] = None if found is None else tuple(sorted(found))
        fields = self._fields[channel]
        if fields is None:
            return None
        values: list[object] = []
        for name in fields:
            value = contact.get(name, _ABSENT)
            if name == "first_name" and not value:  # as build_context derives it
                value = first_name(contact.get("full_name"))
            # Only text and None: equal values then give the same rendering (1 == True, lists: no).
            if value is not None and type(value) is not str:
                return None
            values.append(value)
        return (channel, with_html, *values)

    def _compose(self, channel: str, contact: dict[str, Any] | None, *, with_html: bool) -> MessageText:
        spec: ChannelSpec = self.definition.channels[channel]  # type: ignore[index]
        rendered = self.renderer.render(
            template=spec.template, channel=channel, context=self.context(contact), with_html=with_html
        )
        if channel == Channel.SMS:
            text = normalize(rendered.text)
            if spec.unaccented:
                text = unaccent(text)
            analysis = analyse(text)
            limit = spec.max_segments or self.settings.sms.max_segments
            return MessageText(
                subject=None,
                body=text,
                html=None,
                encoding=analysis.encoding.value,
                segments=analysis.segments,
                too_long=analysis.segments > limit,
            )
        if channel == Channel.PUSH:
            size = measure(title=rendered.subject or "", body=rendered.text, link=rendered.link)
            return MessageText(
                subject=rendered.subject,
                body=rendered.text,
                html=None,
                link=rendered.link,
                too_large=size.over_limits,
            )
        if channel == Channel.SOCIAL:
            return self._social_text(spec, rendered.text, rendered.link, rendered.image, contact)
        return MessageText(subject=rendered.subject, body=rendered.text, html=rendered.html)

    def _social_text(
        self,
        spec: ChannelSpec,
        text: str,
        link: str | None,
        image: str | None,
        contact: dict[str, Any] | None,
    ) -> MessageText:
        provider = self.settings.providers.get(spec.provider)
        limit = (capabilities_of(provider).max_length if provider else None) or SOCIAL_POST_MAX_CHARS
        data: dict[str, str] | None = None
        if spec.template_data:
            context = self.context(contact)
            data = {
                name: self.renderer.render_value(
                    source, field=f"channels.social.template_data.{name}", context=context
                )
                for name, source in spec.template_data.items()
            }
        return MessageText(
            subject=None,
            body=text,
            html=None,
            link=link,
            image=image,
            template_id=spec.template_id,
            template_data=data,
            too_large=not text.strip() or len(text) > limit,
        )

    def email_text(
        self, contact: dict[str, Any] | None, *, unsubscribe_url: str, planned: str | None = None
    ) -> str:
        """The text/plain part carrying the opt-out link, as the HTML part does: rendered with the link, and
        the standard line added when the template does not show it. ``planned``: the text rendered without
        the link at planning, used as it is when no template of the version mentions the link."""
        if planned is not None and not self._templates_show_link:
            text = planned
        else:
            spec: ChannelSpec = self.definition.channels["email"]
            context = self.context(contact, unsubscribe_url=unsubscribe_url)
            text = self.renderer.render(
                template=spec.template, channel=Channel.EMAIL, context=context, with_html=False
            ).text
        if unsubscribe_url not in text:
            text += "\n" + OPT_OUT_LINE.format(url=unsubscribe_url) + "\n"
        return text

    def html(self, contact: dict[str, Any] | None, *, unsubscribe_url: str | None = None) -> str | None:
        """The e-mail's HTML part alone: the sender renders it at send time from the stored context."""
        spec: ChannelSpec = self.definition.channels["email"]
        context = self.context(contact, unsubscribe_url=unsubscribe_url)
        return self.renderer.render_html(template=spec.template, context=context)
