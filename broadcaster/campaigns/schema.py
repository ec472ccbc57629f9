"""The campaign definition file, as pydantic models: what a campaign YAML may say and what it means.

docs/architecture.md §5 lists the fields. Every model forbids unknown keys so that a typo (``provder:``) is an error
with its line (``files.py`` maps error locations back to YAML lines), never a silently ignored setting.

Errors that a model-level validator raises carry the dotted path of the offending field in their context
(``ctx["path"]``), so that ``files.py`` can still point at the right YAML line.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RecurrenceRule
from dateutil.rrule import rrulestr
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "SUPPORTED_CHANNELS",
    "Audience",
    "AudienceFilter",
    "CampaignDefinition",
    "ChannelName",
    "ChannelSpec",
    "OnUncertain",
    "Priority",
    "Purpose",
    "Schedule",
    "SendWindow",
    "Topic",
]

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

# Channels a campaign file may use today; push and social adapters come later (docs/architecture.md §1).
SUPPORTED_CHANNELS: tuple[str, ...] = ("sms", "email")
_LATER_CHANNELS: tuple[str, ...] = ("push", "social")

_SLUG = r"^[a-z0-9][a-z0-9-]{2,63}$"
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_VARIABLE = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_TEMPLATE_NAME = r"^(sms|email)/[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$"
_DEADLINE = re.compile(r"^(\d{2})-(\d{2})$")


def _located(path: str, message: str) -> PydanticCustomError:
    """A validation error whose ``ctx["path"]`` names the field (dotted) that a model validator blames."""
    return PydanticCustomError("campaign_rule", "{path}: {detail}", {"path": path, "detail": message})


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


class Purpose(StrEnum):
    """Why a campaign is sent; decides which consent rules apply (docs/domain.md §1.1, Decree 91/2020 art. 3.1)."""

    OFFICIAL_DUTY = "official_duty"
    """Instructions to the state's own staff ("tin nhắn điều hành"); not advertising."""
    PUBLIC_INFORMATION = "public_information"
    """News and social policy for the public: outside Decree 91's "advertising" (art. 3.1 carve-out)."""
    ADVERTISING = "advertising"
    """Introduces products or services: prior consent, [QC]/[AD] label (art. 15), 07-22h, 3 per 24 h."""


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
    model_config = ConfigDict(extra="forbid", frozen=True)


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
            "channel '{channel}' is not supported yet: use sms or email (push and social come later)",
            {"channel": value},
        )
    return value


ChannelName = Annotated[Literal["sms", "email"], BeforeValidator(_check_channel_name)]


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


class SendWindow(_Model):
    """Local hours and days in which messages may go out; outside it, sends wait (``not_before``)."""

    start: time = time(7, 0)
    end: time = time(21, 0)
    weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1)] = [1, 2, 3, 4, 5, 6, 7]
    """ISO weekdays, 1 = Monday .. 7 = Sunday."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time_from_sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 21:00 as the base-60 integer 1260; our loader turns that off, but a
        # caller that used plain yaml.safe_load still gets the intended clock time.
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 24 * 60:
                return time(value // 60, value % 60)
            if value < 24 * 3600:
                return time(value // 3600, value // 60 % 60, value % 60)
        if isinstance(value, str) and re.fullmatch(r"\d:\d\d(:\d\d)?", value.strip()):
            return "0" + value.strip()  # "7:30" as people write it; pydantic wants "07:30"
        return value

    @model_validator(mode="after")
    def _check(self) -> SendWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise _located("start", "window times are local clock times; leave out the UTC offset")
        if self.end <= self.start:
            raise _located("end", f"window end {self.end} must be later than its start {self.start}")
        return self

    def contains(self, moment: datetime, tz: ZoneInfo) -> bool:
        """Whether an aware ``moment`` falls inside the window in time zone ``tz``."""
        local = moment.astimezone(tz)
        return (
            local.isoweekday() in self.weekdays and self.start <= local.time().replace(tzinfo=None) < self.end
        )

    def next_open(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The earliest aware UTC instant at or after ``moment`` that lies inside the window."""
        if self.contains(moment, tz):
            return moment.astimezone(UTC)
        local = moment.astimezone(tz)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.isoweekday() not in self.weekdays:
                continue
            opening = datetime.combine(day, self.start, tzinfo=tz)
            if opening >= local:
                return opening.astimezone(UTC)
        raise ValueError("send window has no opening")  # unreachable: weekdays is never empty


def _aware(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _to_datetime(value: Any) -> Any:
    # YAML turns "2025-01-06" into a date; a bare date means midnight local time.
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0, 0))
    return value


class Schedule(_Model):
    """When the campaign runs: once at ``start``, by an RFC 5545 rule, or N days before yearly deadlines.

    Naive datetimes mean local time in ``timezone`` and are made aware on load. Recurrences are computed in
    local time (so "Monday 08:00" stays 08:00 local) and returned in UTC.
    """

    start: Annotated[datetime, BeforeValidator(_to_datetime)]
    rrule: str | None = None
    """RFC 5545 §3.3.10 RRULE body, e.g. ``FREQ=WEEKLY;INTERVAL=2;BYDAY=MO``; DTSTART is ``start``."""
    until: Annotated[datetime, BeforeValidator(_to_datetime)] | None = None
    """Last moment an occurrence may have (inclusive)."""
    before_deadlines: list[str] | None = None
    """Yearly deadlines as ``MM-DD`` (e.g. plan 143 §V: ``05-30`` and ``11-30``)."""
    days_before: Annotated[int, Field(ge=0, le=180)] | None = None
    """With ``before_deadlines``: run this many days before each deadline, at ``start``'s local time."""
    window: SendWindow | None = None
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Ho_Chi_Minh)") from exc
        return value

    @field_validator("before_deadlines")
    @classmethod
    def _deadlines(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one deadline as MM-DD, or leave before_deadlines out")
        for item in value:
            match = _DEADLINE.match(item)
            if match is None:
                raise ValueError(f"deadline {item!r} is not MM-DD (e.g. '05-30'; quote it in YAML)")
            try:
                date(2000, int(match.group(1)), int(match.group(2)))  # 2000 is a leap year: 02-29 allowed
            except ValueError as exc:
                raise ValueError(f"deadline {item!r} is not a day of the year") from exc
        return sorted(set(value))

    @field_validator("rrule")
    @classmethod
    def _rrule_body(cls, value: str | None) -> str | None:
        if value is None:
            return None
        body = value.strip()
        if body.upper().startswith("RRULE:"):
            body = body[len("RRULE:") :]
        if not body or "\n" in body or "DTSTART" in body.upper():
            raise ValueError(
                "rrule is one RRULE body like FREQ=WEEKLY;INTERVAL=2;BYDAY=MO (DTSTART is start)"
            )
        return body

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        tz = self.zone
        object.__setattr__(self, "start", _aware(self.start, tz))
        if self.until is not None:
            object.__setattr__(self, "until", _aware(self.until, tz))
            if self.until < self.start:
                raise _located("until", "until is earlier than start")
        if self.rrule is not None and self.before_deadlines is not None:
            raise _located("before_deadlines", "give either rrule or before_deadlines, not both")
        if self.before_deadlines is not None and self.days_before is None:
            raise _located("before_deadlines", "days_before is required with before_deadlines")
        if self.days_before is not None and self.before_deadlines is None:
            raise _located("days_before", "days_before only applies together with before_deadlines")
        if self.rrule is not None:
            try:
                self._rule()
            except (ValueError, TypeError) as exc:  # dateutil reports every bad rule as ValueError
                raise _located("rrule", f"invalid RRULE {self.rrule!r}: {exc}") from exc
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _rule(self) -> RecurrenceRule:
        local_start = self.start.astimezone(self.zone)
        rule = rrulestr(self.rrule or "", dtstart=local_start)
        if not isinstance(rule, RecurrenceRule):  # rrulestr returns an rruleset only for multi-line input
            raise ValueError("expected a single RRULE")
        return rule

    def occurrences(self, after: datetime, before: datetime) -> list[datetime]:
        """Occurrences in ``[after, before)`` as aware UTC datetimes, sorted.

        The half-open interval lets consecutive ticks partition time without firing an occurrence twice.
        """
        if after.tzinfo is None or before.tzinfo is None:
            raise ValueError("occurrences() needs aware datetimes")
        if before <= after:
            return []
        tz = self.zone
        found: list[datetime]
        if self.rrule is not None:
            # between() with inc=True includes both ends; the end is dropped below.
            found = list(self._rule().between(after.astimezone(tz), before.astimezone(tz), inc=True))
        elif self.before_deadlines is not None:
            found = self._deadline_occurrences(after, before)
        else:
            found = [self.start]
        last = self.until
        return sorted(
            moment.astimezone(UTC)
            for moment in found
            if after <= moment < before and moment >= self.start and (last is None or moment <= last)
        )

    def next_occurrence(self, after: datetime) -> datetime | None:
        """The first occurrence at or after ``after`` (aware UTC), or None when the schedule is over."""
        if after.tzinfo is None:
            raise ValueError("next_occurrence() needs an aware datetime")
        if self.rrule is not None:
            moment: datetime | None = self._rule().after(after.astimezone(self.zone), inc=True)
            if moment is None or (self.until is not None and moment > self.until):
                return None
            return moment.astimezone(UTC)
        horizon = after + timedelta(days=2 * 366)  # a yearly deadline recurs within two years
        found = self.occurrences(after, horizon)
        return found[0] if found else None

    def _deadline_occurrences(self, after: datetime, before: datetime) -> list[datetime]:
        deadlines = self.before_deadlines or []
        days_before = self.days_before or 0
        tz = self.zone
        local_start = self.start.astimezone(tz)
        clock = local_start.time().replace(tzinfo=None)
        first_year = after.astimezone(tz).year
        last_year = before.astimezone(tz).year + 1  # a deadline early next year may fall before `before`
        found: list[datetime] = []
        for year in range(first_year, last_year + 1):
            for item in deadlines:
                month, day = (int(part) for part in item.split("-"))
                try:
                    deadline = date(year, month, day)
                except ValueError:  # 02-29 outside leap years
                    continue
                run_day = deadline - timedelta(days=days_before)
                found.append(datetime.combine(run_day, clock, tzinfo=tz))
        return found


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
    purpose: Purpose
    audience: Audience
    channels: Annotated[dict[ChannelName, ChannelSpec], Field(min_length=1)]
    schedule: Schedule | None = None
    """None: the campaign is sent on demand (``broadcaster send ID``)."""
    on_uncertain: OnUncertain = OnUncertain.HOLD
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
                    f"variable name {name!r} must be lowercase letters, digits and _ (vars.NAME)"
                )
        return value

    @model_validator(mode="after")
    def _check_channels(self) -> CampaignDefinition:
        for channel, spec in self.channels.items():
            prefix = spec.template.split("/", 1)[0]
            if prefix != channel:
                raise _located(
                    f"channels.{channel}.template",
                    f"template {spec.template!r} is not a {channel} template (names start with '{channel}/')",
                )
            if channel != "sms":
                for option in ("unaccented", "max_segments"):
                    if option in spec.model_fields_set:
                        raise _located(f"channels.{channel}.{option}", f"{option} applies to SMS only")
            if self.purpose is Purpose.ADVERTISING and spec.allow_unsubscribe is False:
                raise _located(
                    f"channels.{channel}.allow_unsubscribe",
                    "advertising must offer refusal (Decree 91/2020 art. 16); remove allow_unsubscribe: false",
                )
        return self

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
