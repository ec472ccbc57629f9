"""Campaign definitions: the YAML schema (``schema``) and loading files with line-accurate problems (``files``)."""

from broadcaster.campaigns.schema import (
    Audience,
    AudienceFilter,
    CampaignDefinition,
    ChannelSpec,
    OnUncertain,
    Priority,
    Purpose,
    Schedule,
    SendWindow,
    Topic,
)

__all__ = [
    "Audience",
    "AudienceFilter",
    "CampaignDefinition",
    "ChannelSpec",
    "OnUncertain",
    "Priority",
    "Purpose",
    "Schedule",
    "SendWindow",
    "Topic",
]
