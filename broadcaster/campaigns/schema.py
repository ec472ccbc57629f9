"""The campaign definition file, as pydantic models: what a campaign YAML may say and what it means.

docs/architecture.md §5 lists the fields. Every model forbids unknown keys so that a typo (``provder:``) is an error
with its line (``schema_errors`` maps error locations back to YAML lines), never a silently ignored setting.
The schedule and send window live in ``schedule``; the shared model base in ``schema_base``.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from broadcaster.campaigns.schedule import Schedule, SendWindow
from broadcaster.campaigns.schema_base import CAMPAIGN_MODEL_CONFIG, located
from broadcaster.consent_texts import consent_message
from broadcaster.i18n import gettext as _
from channels.base import Channel
from consent.policy import Purpose, UnknownPurpose

__all__ = [
    "SUPPORTED_CHANNELS",
    "Audience",
    "AudienceFilter",
    "CampaignDefinition",
    "ChannelName",
    "ChannelSpec",
    "Fallback",
    "OnUncertain",
    "Priority",
    "Purpose",
    "Schedule",
    "SendWindow",
    "Topic",
]

# Channels a campaign file may use (docs/architecture.md §1, docs/push.md, docs/social.md).
SUPPORTED_CHANNELS: tuple[str, ...] = (Channel.SMS, Channel.EMAIL, Channel.PUSH, Channel.SOCIAL)
_LATER_CHANNELS: tuple[str, ...] = ()

_SLUG = r"^[a-z0-9][a-z0-9-]{2,63}$"
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_VARIABLE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_TEMPLATE_NAME = r"^(sms|email|push|social)/[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$"


def _nfc(value: Any) -> Any:
    """NFC-normalise every string in a parsed YAML tree (NFD Vietnamese is longer and compares unequal)."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {_nfc(k): _nfc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    return value


def _as_list(value: Any) -> Any:
    """Accept a single string where a list of strings is expected (``segments: citizen``)."""
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_as_list)]


class OnUncertain(StrEnum):
    """What to do with a message whose outcome is unknown (connection lost after the write)."""

    HOLD = "hold"
    """Keep it as ``unknown`` with ``hold`` set until an operator decides (no duplicate to the citizen)."""
    RESEND = "resend"
    """Send it again (a duplicate is acceptable, a missing message is not)."""


class Priority(StrEnum):
    """Queue choice: urgent campaigns use ``send.<channel>.urgent`` and draw rate-limit tokens first."""

    NORMAL = "normal"
    URGENT = "urgent"


class Topic(StrEnum):
    """The six reform areas of the state administrative reform programme 2021-2030 (plan 143, section II.d)."""

    THE_CHE = "the_che"
    THU_TUC_HANH_CHINH = "thu_tuc_hanh_chinh"
    TO_CHUC_BO_MAY = "to_chuc_bo_may"
    CONG_VU = "cong_vu"
    TAI_CHINH_CONG = "tai_chinh_cong"
    CHINH_QUYEN_SO = "chinh_quyen_so"

    @property
    def label(self) -> str:
        """The Vietnamese name of the area, as the plan writes it."""
        return _TOPIC_LABELS[self]


# Plan 143/KH-UBND section II.d, the six headings of "những nội dung cơ bản".
_TOPIC_LABELS: dict[Topic, str] = {
    Topic.THE_CHE: "Cải cách thể chế",
    Topic.THU_TUC_HANH_CHINH: "Cải cách thủ tục hành chính",
    Topic.TO_CHUC_BO_MAY: "Cải cách tổ chức bộ máy hành chính nhà nước",
    Topic.CONG_VU: "Cải cách chế độ công vụ",
    Topic.TAI_CHINH_CONG: "Cải cách tài chính công",
    Topic.CHINH_QUYEN_SO: "Xây dựng và phát triển chính quyền điện tử, chính quyền số",
}


class _Model(BaseModel):
    model_config = CAMPAIGN_MODEL_CONFIG


class AudienceFilter(_Model):
    """Narrows the segments: a contact must match every filter that is given (any value within one filter).

    Values are compared with the contact's columns of the same name (contacts file, docs/architecture.md §5).
    """

    agency: StrList | None = None
    """Contact's agency (cơ quan), e.g. "Sở Nội vụ"."""
    district: StrList | None = None
    """Contact's district (quận, huyện), e.g. "Hải Châu"."""
    ward: StrList | None = None
    """Contact's ward (phường, xã)."""
    tags_any: StrList | None = None
    """The contact carries at least one of these tags."""
    language: StrList | None = None
    """Contact's language code, e.g. "vi"."""


class Audience(_Model):
    """Who receives the campaign: contacts in any of ``segments``, narrowed by ``filters``, minus exclusions."""

    segments: Annotated[
        list[Annotated[str, Field(pattern=_NAME)]], Field(min_length=1), BeforeValidator(_as_list)
    ]
    """Contact segments (the contacts file's ``segment`` column), e.g. citizen, civil_servant, business."""
    filters: AudienceFilter = AudienceFilter()
    exclude_tags: StrList = []
    """Contacts carrying any of these tags are left out (before consent filtering)."""


def _check_channel_name(value: Any) -> Any:
    if isinstance(value, str) and value in _LATER_CHANNELS:
        raise PydanticCustomError(
            "channel_not_supported",
            _("channel '{channel}' is not supported yet: use sms, email, push or social"),
            {"channel": value},
        )
    return value


def _check_purpose(value: Any) -> Any:
    # pydantic's enum message lists the choices but not what was written; name it, as the settings do.
    if isinstance(value, str) and value not in {p.value for p in Purpose}:
        # as a value, not the template: what was written may hold braces
        raise PydanticCustomError(
            "unknown_purpose", "{message}", {"message": consent_message(UnknownPurpose(value))}
        )
    return value


ChannelName = Annotated[Literal["sms", "email", "push", "social"], BeforeValidator(_check_channel_name)]


class ChannelSpec(_Model):
    """How one channel of the campaign is sent."""

    template: Annotated[str, Field(pattern=_TEMPLATE_NAME)]
    """Template name without suffixes, e.g. ``sms/thong-bao-dvc`` (see templates/README.md for the files)."""
    provider: Annotated[str, Field(min_length=1)]
    """A provider section name from the settings (``[providers.NAME]``) whose channel is this channel."""
    unaccented: bool = False
    """SMS only: send "không dấu" (GSM-7, 160/153 chars per part instead of 70/67 in UCS-2)."""
    max_segments: Annotated[int, Field(ge=1, le=10)] | None = None
    """SMS only: validation fails when the sample rendering needs more parts than this."""
    allow_unsubscribe: bool | None = None
    """Offer opting out (e-mail footer link, List-Unsubscribe); None: the consent policy decides by purpose."""
    targets: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1)] | None
    ) = None
    """Social, on a provider that posts to named targets (Facebook Pages): the target ids, one message each."""
    template_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """Social, on a provider of approved templates (Zalo ZNS): the approved template's id."""
    template_data: dict[str, str] = {}
    """Social, approved templates: the template's parameters, each a text rendered per person like a
    template (``"{{ contact.full_name }}"``); the message text fills the provider's ``body_param``."""


class Fallback(_Model):
    """Per person: when the message on ``from`` is not confirmed delivered within ``after_minutes``, the
    message on ``to`` goes instead (docs/social.md, "Fallback")."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: Annotated[ChannelName, Field(alias="from")]
    to: ChannelName
    after_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)]


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


class CampaignDefinition(_Model):
    """One campaign file: what is said, to whom, through which channels and when (docs/architecture.md §5)."""

    id: Annotated[str, Field(pattern=_SLUG)]
    """Stable slug, 3-64 characters: lowercase letters, digits and hyphens."""
    title: Annotated[str, Field(min_length=1, max_length=300)]
    plan_item: Annotated[str, Field(pattern=r"^[IVXLC]+(\.[0-9a-zđ]+)*$")] | None = None
    """Item of plan 143/KH-UBND this campaign carries out, e.g. ``III.9`` or ``V``."""
    lead_agency: Annotated[str, Field(min_length=1)]
    """Cơ quan chủ trì, written as in the plan."""
    co_agencies: StrList = []
    """Cơ quan phối hợp."""
    topics: Annotated[list[Topic], Field(min_length=1)]
    purpose: Annotated[Purpose, BeforeValidator(_check_purpose)]
    audience: Audience
    channels: Annotated[dict[ChannelName, ChannelSpec], Field(min_length=1)]
    schedule: Schedule | None = None
    """None: the campaign is sent on demand (``broadcaster send ID``)."""
    on_uncertain: OnUncertain = OnUncertain.HOLD
    fallback: Fallback | None = None
    """Send ``to`` to each person whose ``from`` message is not delivered in time (both channels listed)."""
    priority: Priority = Priority.NORMAL
    description: str | None = None
    variables: dict[str, str] = {}
    """Campaign-level template variables, available as ``vars.NAME``."""

    @model_validator(mode="before")
    @classmethod
    def _normalise_text(cls, data: Any) -> Any:
        return _nfc(data)

    @field_validator("topics", "co_agencies")
    @classmethod
    def _dedupe(cls, value: list[Any]) -> list[Any]:
        return _unique(value)

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _VARIABLE.match(name):
                raise ValueError(
                    _("variable name '%(name)s' must be lowercase letters, digits and _ (vars.NAME)")
                    % {"name": name}
                )
        return value

    @model_validator(mode="after")
    def _check_channels(self) -> CampaignDefinition:
        for channel, spec in self.channels.items():
            prefix = spec.template.split("/", 1)[0]
            if prefix != channel:
                raise located(
                    f"channels.{channel}.template",
                    _(
                        "template '%(template)s' is not a %(channel)s template (names start with '%(channel)s/')"
                    )
                    % {"template": spec.template, "channel": channel},
                )
            if channel != "sms":
                for option in ("unaccented", "max_segments"):
                    if option in spec.model_fields_set:
                        raise located(
                            f"channels.{channel}.{option}",
                            _("%(option)s applies to SMS only") % {"option": option},
                        )
            if channel != "social":
                for option in ("targets", "template_id", "template_data"):
                    if option in spec.model_fields_set:
                        raise located(
                            f"channels.{channel}.{option}",
                            _("%(option)s applies to the social channel only") % {"option": option},
                        )
            if self.purpose is Purpose.ADVERTISING and spec.allow_unsubscribe is False:
                raise located(
                    f"channels.{channel}.allow_unsubscribe",
                    _(
                        "advertising must offer refusal (Decree 91/2020 art. 16); remove allow_unsubscribe: false"
                    ),
                )
        self._check_fallback()
        return self

    def _check_fallback(self) -> None:
        fallback = self.fallback
        if fallback is None:
            return
        for where, channel in (("from", fallback.from_), ("to", fallback.to)):
            if channel not in self.channels:
                raise located(
                    f"fallback.{where}",
                    _("channel '%(channel)s' is not one of the campaign's channels") % {"channel": channel},
                )
        if fallback.from_ == fallback.to:
            raise located("fallback.to", _("a fallback goes to another channel than its 'from'"))
        if fallback.to == "push":  # one fallback per person: its channel must have one address each
            raise located(
                "fallback.to", _("a fallback cannot go by push (a person may have several devices)")
            )

    def zone(self, default: str) -> ZoneInfo:
        """Where its send window and its purpose's send hours are read: the schedule's zone, else ``default``
        (the settings' ``timezone``)."""
        return self.schedule.zone if self.schedule else ZoneInfo(default)

    def template_context(self) -> dict[str, Any]:
        """The ``campaign`` root of the template context (see templates/README.md)."""
        return {
            "id": self.id,
            "title": self.title,
            "plan_item": self.plan_item,
            "lead_agency": self.lead_agency,
            "co_agencies": list(self.co_agencies),
            "topics": [topic.label for topic in self.topics],
            "purpose": self.purpose.value,
            "description": self.description,
        }


CAMPAIGN_CONTEXT_FIELDS: frozenset[str] = frozenset(
    ("id", "title", "plan_item", "lead_agency", "co_agencies", "topics", "purpose", "description")
)
