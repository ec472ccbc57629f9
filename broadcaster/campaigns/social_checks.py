"""Validation of a campaign's social channel: what the provider's adapter kind asks of its spec, and what
the sample rendering must keep (docs/social.md, "Engine side").

A provider of named targets (``capabilities.targets_setting``: Facebook Pages) needs ``targets``, each one it
holds a token for; a provider of approved templates (``capabilities.templates_setting``: Zalo ZNS) needs a
``template_id`` among the approved ones. Neither is told apart by its type name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.schema import ChannelSpec
from broadcaster.campaigns.send_rules import ProviderInfo
from broadcaster.campaigns.yaml_source import line_of
from broadcaster.i18n import gettext as _
from broadcaster.provider_shapes import SOCIAL_POST_MAX_CHARS
from broadcaster.rendering import Rendered, Renderer, RenderError, shorten
from channels.base import Channel

__all__ = [
    "POST_MAX_CHARS",
    "personal_post_problems",
    "social_sample_problems",
    "social_spec_problems",
    "text_limit",
]

# ``contact.x`` or ``contact["x"]`` in a template's source.
_CONTACT_USE = re.compile(r"\bcontact\s*[.\[]")

POST_MAX_CHARS = SOCIAL_POST_MAX_CHARS
PREFIX = f"channels.{Channel.SOCIAL.value}"


def text_limit(provider: ProviderInfo) -> int:
    """Characters a social message's text may have: the adapter's declared cap, else a Page post's."""
    return provider.capabilities.max_length or POST_MAX_CHARS


def social_spec_problems(
    spec: ChannelSpec, provider: ProviderInfo, *, path: Path, root: Node | None
) -> list[Problem]:
    """What the spec must name for this kind of provider; refuses what it does not take."""
    caps = provider.capabilities
    problems: list[Problem] = []

    def problem(where: tuple[str | int, ...], message: str) -> None:
        field = ".".join(str(part) for part in (PREFIX, *where))
        problems.append(Problem(path, line_of(root, ("channels", "social", *where)), field, message))

    if caps.targets_setting is not None:
        if not spec.targets:
            problem(
                ("provider",),
                _("provider '%(provider)s' posts to named targets: list them under targets")
                % {"provider": provider.name},
            )
        for index, target in enumerate(spec.targets or ()):
            if target.strip() not in provider.targets:
                problem(
                    ("targets", index),
                    _("missing page token: target '%(target)s' is not in provider '%(provider)s' %(setting)s")
                    % {"target": target, "provider": provider.name, "setting": caps.targets_setting},
                )
    elif spec.targets is not None:
        problem(
            ("targets",),
            _("provider '%(provider)s' sends to each person, not to named targets: remove targets")
            % {"provider": provider.name},
        )
    if caps.templates_setting is not None:
        if spec.template_id is None:
            problem(
                ("provider",),
                _("provider '%(provider)s' sends approved templates: name one with template_id")
                % {"provider": provider.name},
            )
        elif spec.template_id not in provider.approved_templates:
            approved = ", ".join(sorted(provider.approved_templates)) or _("none")
            problem(
                ("template_id",),
                _(
                    "template_id '%(template)s' is not approved for provider '%(provider)s'"
                    " (%(setting)s: %(approved)s)"
                )
                % {
                    "template": spec.template_id,
                    "provider": provider.name,
                    "setting": caps.templates_setting,
                    "approved": approved,
                },
            )
    else:
        for option in ("template_id", "template_data"):
            if option in spec.model_fields_set:
                problem(
                    (option,),
                    _("provider '%(provider)s' takes no approved templates: remove %(option)s")
                    % {"provider": provider.name, "option": option},
                )
    return problems


def social_sample_problems(
    rendered: Rendered,
    spec: ChannelSpec,
    provider: ProviderInfo,
    *,
    renderer: Renderer,
    context: Mapping[str, Any],
    text_file: Path,
) -> list[Problem]:
    """The sample message is not empty, within the text limit, and its template data renders."""
    field = f"{PREFIX}.template"
    problems: list[Problem] = []
    if not rendered.text.strip():
        problems.append(Problem(text_file, 1, field, _("the sample social message is empty")))
    limit = text_limit(provider)
    if len(rendered.text) > limit:
        problems.append(
            Problem(
                text_file,
                1,
                field,
                _("the sample social message has %(count)d characters, more than %(limit)d: %(text)s")
                % {"count": len(rendered.text), "limit": limit, "text": shorten(repr(rendered.text))},
            )
        )
    for name, source in spec.template_data.items():
        try:
            renderer.render_value(source, field=f"{PREFIX}.template_data.{name}", context=context)
        except RenderError as exc:
            problems.append(Problem(text_file, None, f"{PREFIX}.template_data.{name}", exc.message))
    return problems


def personal_post_problems(
    names: Iterable[str], sources: Mapping[str, str], *, templates_dir: Path
) -> list[Problem]:
    """A post to named targets is rendered once, for no one: its templates (``names``, with every file they
    use) may not name the contact, whose fields would all be empty."""
    problems: list[Problem] = []
    for name in names:
        for number, line in enumerate(sources.get(name, "").splitlines(), start=1):
            if _CONTACT_USE.search(line):
                problems.append(
                    Problem(
                        templates_dir / name,
                        number,
                        f"{PREFIX}.template",
                        _("a post to Pages goes to no one in particular: it cannot use contact fields"),
                    )
                )
                break
    return problems
