"""Checks that only a sample rendering can show: the SMS length and the label the law requires on advertising.

Every channel of a campaign is rendered once for the sample contact; an SMS must not be empty nor need more parts
than ``max_segments``, and an advertising SMS starts with [QC] or [AD] (Decree 91/2020 art. 15).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.schema import CampaignDefinition, Purpose
from broadcaster.campaigns.template_scan import TemplateScan
from broadcaster.campaigns.yaml_source import line_of
from broadcaster.rendering import (
    Renderer,
    RenderError,
    build_context,
    sample_contact,
    shorten,
    template_files,
)
from broadcaster.settings import RenderingSettings
from channels.base import Channel
from channels.sms.encoding import analyse

__all__ = ["ADVERTISING_SMS_LABELS", "SAMPLE_UNSUBSCRIBE_URL", "sample_checks"]

# Decree 91/2020/NĐ-CP art. 15: every advertising SMS starts with the label [QC] or [AD] (docs/domain.md §1.1).
ADVERTISING_SMS_LABELS: tuple[str, ...] = ("[QC]", "[AD]")

SAMPLE_UNSUBSCRIBE_URL = "https://example.invalid/huy-dang-ky/MAU-0001"


def sample_checks(
    definition: CampaignDefinition,
    *,
    path: Path,
    root: Node | None,
    templates_dir: Path,
    scan: TemplateScan,
    org: Mapping[str, Any],
    limits: RenderingSettings | None,
) -> list[Problem]:
    """Render every channel for the sample contact and check what only a rendering can show.

    ``org`` is the configured sending organisation, as preview and sending use it: its names are part of
    most SMS texts, so a sample organisation would count other SMS parts than those that are paid for.
    ``limits`` is the settings' ``[rendering]``: a template that renders past it here would at every send."""
    problems: list[Problem] = []
    try:
        renderer = Renderer(scan.templates, limits=limits)
    except RenderError as exc:
        return [Problem(templates_dir / exc.template, exc.line, None, exc.message)]
    for channel, spec in definition.channels.items():
        prefix = f"channels.{channel}"
        unsubscribe = None if spec.allow_unsubscribe is False else SAMPLE_UNSUBSCRIBE_URL
        context = build_context(
            contact=sample_contact(),
            campaign=definition.template_context(),
            org=org,
            variables=definition.variables,
            unsubscribe_url=unsubscribe,
        )
        try:
            rendered = renderer.render(
                template=spec.template, channel=channel, context=context, unaccented=spec.unaccented
            )
        except RenderError as exc:
            problems.append(
                Problem(templates_dir / exc.template, exc.line, f"{prefix}.template", exc.message)
            )
            continue
        if Channel(channel) is not Channel.SMS:
            continue
        text_file = templates_dir / template_files(spec.template, channel)["text"]
        if not rendered.text:
            problems.append(Problem(text_file, 1, f"{prefix}.template", "the sample SMS is empty"))
        analysis = analyse(rendered.text, unaccented=spec.unaccented)
        if spec.max_segments is not None and analysis.segments > spec.max_segments:
            problems.append(
                Problem(
                    path,
                    line_of(root, ("channels", channel, "max_segments")),
                    f"{prefix}.max_segments",
                    f"the sample SMS needs {analysis.segments} parts ({analysis.units} {analysis.encoding.value}"
                    f" units, {analysis.per_segment} per part), more than max_segments {spec.max_segments}"
                    f" ({text_file}): {shorten(repr(rendered.text))}",
                )
            )
        if definition.purpose is Purpose.ADVERTISING and not rendered.text.startswith(ADVERTISING_SMS_LABELS):
            problems.append(
                Problem(
                    text_file,
                    1,
                    f"{prefix}.template",
                    "an advertising SMS must start with [QC] or [AD] (Decree 91/2020 art. 15);"
                    f" the sample starts {rendered.text[:20]!r}",
                )
            )
    return problems
