"""What campaign validation takes from the settings: the providers' facts and the rules a sample must meet.

Built once per validation from the loaded settings, so `campaigns validate`, `load`, the demo and the tests
judge a campaign by the same settings that will send it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broadcaster.provider_shapes import approved_templates, capabilities_of, known_targets
from broadcaster.rendering import sample_org
from broadcaster.settings import Settings
from broadcaster.settings_sections import ConsentSettings, ProviderSettings, RenderingSettings
from channels.base import Capabilities
from consent.keywords import Keywords

__all__ = ["ProviderInfo", "SendRules"]


@dataclass(frozen=True)
class ProviderInfo:
    """What campaign validation needs to know about a configured provider."""

    name: str
    channel: str
    label_brackets: bool = True
    """SMS: the advertising label may be bracketed ("[QC] " rather than "QC "); docs/domain.md §1.1."""
    capabilities: Capabilities = field(default_factory=Capabilities, compare=False)
    """What its adapter declares: social providers differ by it (named targets, approved templates)."""
    targets: frozenset[str] = frozenset()
    """Named targets it can post to (``capabilities.targets_setting``: a Facebook provider's Pages)."""
    approved_templates: frozenset[str] = frozenset()
    """Provider-approved template ids (``capabilities.templates_setting``: ZNS)."""

    @classmethod
    def from_settings(cls, name: str, provider: ProviderSettings) -> ProviderInfo:
        return cls(
            name=name,
            channel=provider.channel,
            label_brackets=provider.label_brackets,
            capabilities=capabilities_of(provider),
            targets=known_targets(provider),
            approved_templates=approved_templates(provider),
        )

    @classmethod
    def all_from(cls, settings: Settings) -> dict[str, ProviderInfo]:
        """Every configured provider, by name."""
        return {name: cls.from_settings(name, provider) for name, provider in settings.providers.items()}


@dataclass(frozen=True)
class SendRules:
    """The settings a sample rendering is checked against; the defaults stand in when there are none."""

    org: Mapping[str, Any] = field(default_factory=sample_org)
    """The sending organisation (``[org]``): its names are part of most SMS texts, so of their length."""
    limits: RenderingSettings = field(default_factory=RenderingSettings)
    """``[rendering]``: a template that renders past it here would at every send."""
    opt_out_keywords: Keywords = field(default_factory=lambda: ConsentSettings().keywords())
    """``[consent] opt_out_keywords``: an advertising SMS ends by naming one (Decree 91/2020 art. 16)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SendRules:
        return cls(
            org=settings.org.model_dump(),
            limits=settings.rendering,
            opt_out_keywords=settings.consent.keywords(),
        )
