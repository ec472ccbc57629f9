"""Checks that only a sample rendering can show: the SMS length, the push payload size and what the law asks of
advertising.

Every channel of a campaign is rendered once for the sample contact; an SMS must not be empty nor need more parts
than ``max_segments``, a push notification must have a title and a body within ``push_payload``'s limits (FCM's
4096-byte payload), and a purpose whose rules ask for it (advertising) gets the label and refusal checks of
``advertising`` (Decree 91/2020 arts. 15-16, docs/domain.md §1.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from yaml.nodes import Node

from broadcaster.campaigns import advertising
from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.schema import CampaignDefinition, ChannelSpec
from broadcaster.campaigns.send_rules import ProviderInfo, SendRules
from broadcaster.campaigns.social_checks import social_sample_problems
from broadcaster.campaigns.template_scan import TemplateScan
from broadcaster.campaigns.yaml_source import line_of
from broadcaster.i18n import gettext as _
from broadcaster.push_payload import BODY_MAX_CHARS, PAYLOAD_MAX_BYTES, TITLE_MAX_CHARS, measure
from broadcaster.rendering import (
    Rendered,
    Renderer,
    RenderError,
    build_context,
    message_fields,
    sample_contact,
    shorten,
    template_files,
)
from channels.base import Channel
from channels.sms.encoding import analyse

__all__ = ["SAMPLE_UNSUBSCRIBE_URL", "sample_checks"]

SAMPLE_UNSUBSCRIBE_URL = "https://example.invalid/huy-dang-ky/MAU-0001"


def sample_checks(
    definition: CampaignDefinition,
    *,
    path: Path,
    root: Node | None,
    templates_dir: Path,
    scan: TemplateScan,
    providers: Mapping[str, ProviderInfo],
    rules: SendRules,
) -> list[Problem]:
    """Render every channel for the sample contact and check what only a rendering can show.

    ``rules`` carry the configured organisation (its names are part of most SMS texts, so a sample one would
    count other SMS parts than those that are paid for), the rendering limits and the opt-out keywords."""
    problems: list[Problem] = []
    try:
        renderer = Renderer(scan.templates, limits=rules.limits)
    except RenderError as exc:
        return [Problem(templates_dir / exc.template, exc.line, None, exc.message)]
    for channel, spec in definition.channels.items():
        field = f"channels.{channel}.template"
        unsubscribe = None if spec.allow_unsubscribe is False else SAMPLE_UNSUBSCRIBE_URL
        # A post to named targets (a Facebook Page) is rendered once, for no one: no contact to name.
        provider = providers.get(spec.provider)
        posted = provider is not None and provider.capabilities.targets_setting is not None
        context = build_context(
            contact=None if posted else sample_contact(),
            campaign=definition.template_context(),
            org=rules.org,
            variables=definition.variables,
            unsubscribe_url=unsubscribe,
            # A template for single messages (the API's personalisation) renders its ``message.NAME``
            # with a placeholder the length of a short value.
            message={name: f"<{name}>" for name in message_fields(scan.templates, spec.template, channel)},
        )
        try:
            rendered = renderer.render(
                template=spec.template, channel=channel, context=context, unaccented=spec.unaccented
            )
        except RenderError as exc:
            problems.append(Problem(templates_dir / exc.template, exc.line, field, exc.message))
            continue
        parts = template_files(spec.template, channel)
        if Channel(channel) is Channel.SMS:
            problems.extend(
                _sms_length_problems(
                    spec,
                    rendered.text,
                    path=path,
                    root=root,
                    channel=channel,
                    text_file=templates_dir / parts["text"],
                )
            )
            problems.extend(
                advertising.sms_problems(
                    rendered.text,
                    purpose=definition.purpose,
                    provider=providers[spec.provider],
                    keywords=rules.opt_out_keywords,
                    source=scan.templates[parts["text"]],
                    file=templates_dir / parts["text"],
                    field=field,
                )
            )
        elif Channel(channel) is Channel.PUSH:
            problems.extend(_push_problems(rendered, parts=parts, templates_dir=templates_dir, field=field))
        elif Channel(channel) is Channel.SOCIAL:
            problems.extend(
                social_sample_problems(
                    rendered,
                    spec,
                    providers[spec.provider],
                    renderer=renderer,
                    context=context,
                    text_file=templates_dir / parts["text"],
                )
            )
        elif rendered.html is not None:
            problems.extend(
                advertising.html_problems(
                    rendered.html,
                    purpose=definition.purpose,
                    url=SAMPLE_UNSUBSCRIBE_URL,
                    source=scan.templates[parts["html"]],
                    file=templates_dir / parts["html"],
                    field=field,
                )
            )
    return problems


def _sms_length_problems(
    spec: ChannelSpec, text: str, *, path: Path, root: Node | None, channel: str, text_file: Path
) -> list[Problem]:
    prefix = f"channels.{channel}"
    problems: list[Problem] = []
    if not text:
        problems.append(Problem(text_file, 1, f"{prefix}.template", "the sample SMS is empty"))
    analysis = analyse(text, unaccented=spec.unaccented)
    if spec.max_segments is not None and analysis.segments > spec.max_segments:
        problems.append(
            Problem(
                path,
                line_of(root, ("channels", channel, "max_segments")),
                f"{prefix}.max_segments",
                f"the sample SMS needs {analysis.segments} parts ({analysis.units} {analysis.encoding.value}"
                f" units, {analysis.per_segment} per part), more than max_segments {spec.max_segments}"
                f" ({text_file}): {shorten(repr(text))}",
            )
        )
    return problems


def _push_problems(
    rendered: Rendered, *, parts: Mapping[str, str], templates_dir: Path, field: str
) -> list[Problem]:
    """The sample notification's title and body are there and short enough, its payload within FCM's."""
    title_file, body_file = templates_dir / parts["title"], templates_dir / parts["text"]
    title, body = rendered.subject or "", rendered.text
    size = measure(title=title, body=body, link=rendered.link)
    problems: list[Problem] = []
    if not title:
        problems.append(Problem(title_file, 1, field, _("the sample push notification has no title")))
    if not body:
        problems.append(Problem(body_file, 1, field, _("the sample push notification has no body")))
    if size.title_too_long:
        problems.append(
            Problem(
                title_file,
                1,
                field,
                _("the sample push title has %(count)d characters, more than %(limit)d: %(text)s")
                % {"count": size.title_chars, "limit": TITLE_MAX_CHARS, "text": shorten(repr(title))},
            )
        )
    if size.body_too_long:
        problems.append(
            Problem(
                body_file,
                1,
                field,
                _("the sample push body has %(count)d characters, more than %(limit)d: %(text)s")
                % {"count": size.body_chars, "limit": BODY_MAX_CHARS, "text": shorten(repr(body))},
            )
        )
    if size.too_large:
        problems.append(
            Problem(
                body_file,
                1,
                field,
                _(
                    "the sample push notification's payload (title, body and link) is %(size)d bytes, more than"
                    " FCM's %(limit)d: shorten the texts"
                )
                % {"size": size.payload_bytes, "limit": PAYLOAD_MAX_BYTES},
            )
        )
    return problems
