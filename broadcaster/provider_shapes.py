"""What a configured provider's adapter declares, read through the registry without opening it.

The engine tells a Facebook Page provider from a Zalo ZNS one only by these declarations
(``channels.base.Capabilities``: ``address_field``, ``targets_setting``, ``templates_setting``, ``webhook``),
never by its type name (docs/adding-a-channel.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broadcaster.settings_sections import ProviderSettings
from channels import registry
from channels.base import Capabilities

__all__ = [
    "SOCIAL_POST_MAX_CHARS",
    "address_fields",
    "approved_templates",
    "capabilities_of",
    "known_targets",
    "targeted_channels",
]

# A social message's text when its adapter declares no ``max_length``: the length Facebook's composer stops a
# Page post at (not in the Graph API reference: unconfirmed, docs/social.md).
SOCIAL_POST_MAX_CHARS = 63206


def capabilities_of(provider: ProviderSettings) -> Capabilities:
    """The adapter class's capabilities; the defaults when its type cannot be loaded (validation says so)."""
    try:
        found = registry.load_adapter_class(provider.type).capabilities
    except (KeyError, ImportError, AttributeError):
        return Capabilities()
    return found if isinstance(found, Capabilities) else Capabilities()


def _setting_names(options: Mapping[str, Any], name: str | None) -> frozenset[str]:
    if name is None:
        return frozenset()
    value = options.get(name)
    if isinstance(value, Mapping):
        return frozenset(str(key).strip() for key in value)
    if isinstance(value, list | tuple):
        return frozenset(str(item).strip() for item in value)
    return frozenset()


def known_targets(provider: ProviderSettings) -> frozenset[str]:
    """The targets a provider of named targets can post to (Facebook: the Pages with a token)."""
    return _setting_names(provider.options(), capabilities_of(provider).targets_setting)


def approved_templates(provider: ProviderSettings) -> frozenset[str]:
    """The provider-approved template ids a campaign may name (ZNS: ``approved_templates``)."""
    return _setting_names(provider.options(), capabilities_of(provider).templates_setting)


def address_fields(
    providers: Mapping[str, ProviderSettings], used: Mapping[str, str]
) -> dict[str, str | None]:
    """Per channel of a campaign (``used``: channel → provider name), the contact field its adapter addresses."""
    return {
        channel: capabilities_of(providers[name]).address_field if name in providers else None
        for channel, name in used.items()
    }


def targeted_channels(providers: Mapping[str, ProviderSettings], used: Mapping[str, str]) -> frozenset[str]:
    """The channels of a campaign whose provider posts to named targets: planned per target, not per person."""
    return frozenset(
        channel
        for channel, name in used.items()
        if name in providers and capabilities_of(providers[name]).targets_setting is not None
    )
