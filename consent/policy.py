"""What a campaign's purpose demands of each message: one table of rules, and the decision for one recipient.

Pure logic: the caller passes the time, the time zone, the recipient's consent state and flags, and the
settings; nothing here reads a clock or a database (docs/domain.md §1.1, Decree 91/2020/NĐ-CP).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CAP_WINDOW",
    "REASON_TEXTS",
    "Allowed",
    "ConsentNeeded",
    "ConsentState",
    "Decision",
    "Deferred",
    "Excluded",
    "ExclusionReason",
    "PolicySettings",
    "Purpose",
    "PurposeLimits",
    "PurposeRules",
    "RecipientState",
    "SendHours",
    "UnknownPurpose",
    "accepted_sms_labels",
    "cap_frees_at",
    "decide",
    "next_allowed",
    "required_sms_label",
    "rules_for",
    "within_cap",
]

# Decree 91/2020 art. 13: the per-recipient caps count messages "in 24 hours", read as a sliding window.
CAP_WINDOW = timedelta(hours=24)


class Purpose(StrEnum):
    """Why a campaign is sent; decides which consent rules apply (docs/domain.md §1.1, Decree 91/2020 art. 3.1)."""

    OFFICIAL_DUTY = "official_duty"
    """Instructions to the state's own staff ("tin nhắn điều hành"); not advertising."""
    PUBLIC_INFORMATION = "public_information"
    """News and social policy for the public: outside Decree 91's "advertising" (art. 3.1 carve-out)."""
    ADVERTISING = "advertising"
    """Introduces products or services: prior consent, [QC]/[AD] label (art. 15), 07-22h, 3 per 24 h."""


class ConsentNeeded(StrEnum):
    """What the ledger must say before a message of a purpose may go to an address."""

    NONE = "none"
    """Sent whatever the ledger says (bulletins to civil servants on official topics)."""
    NOT_WITHDRAWN = "not_withdrawn"
    """Sent unless the person withdrew (an opt-out system)."""
    PRIOR_GRANT = "prior_grant"
    """Sent only after a grant that was not withdrawn since; silence is not consent (Decree 91 art. 3.3)."""


class ConsentState(StrEnum):
    """The ledger's latest word for one address, channel and purpose."""

    UNKNOWN = "unknown"
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"


class ExclusionReason(StrEnum):
    """Why a recipient gets nothing; stored with the ``suppressed`` message and counted by preview."""

    SUPPRESSED = "suppressed"
    WITHDRAWN = "consent_withdrawn"
    NO_PRIOR_CONSENT = "no_prior_consent"
    DO_NOT_CALL = "do_not_call"
    CAMPAIGN_LIST = "campaign_exclusion_list"


# One text per reason, stored with the ``suppressed`` row, whether planning, the check before a window or a
# refusal arriving later (an opt-out, a list import) stopped it, so preview and reports count one cause once.
REASON_TEXTS: Mapping[ExclusionReason, str] = {
    ExclusionReason.SUPPRESSED: "address suppressed (earlier hard failure or refusal)",
    ExclusionReason.WITHDRAWN: "opted out of this channel",
    ExclusionReason.NO_PRIOR_CONSENT: "no prior consent",
    ExclusionReason.DO_NOT_CALL: "on the do-not-call register",
    ExclusionReason.CAMPAIGN_LIST: "excluded by the campaign's list",
}


class UnknownPurpose(ValueError):
    """A purpose that the policy table does not know; the message names it and the known ones."""

    def __init__(self, purpose: object) -> None:
        # template and values: shown in the application's language (broadcaster/consent_texts.py)
        self.template = "unknown purpose %(purpose)s (known purposes: %(known)s)"
        self.values = {"purpose": repr(purpose), "known": ", ".join(p.value for p in Purpose)}
        super().__init__(self.template % self.values)
        self.purpose = purpose


_PURPOSES: dict[str, Purpose] = {purpose.value: purpose for purpose in Purpose}


def _purpose(value: object) -> Purpose:
    found = _PURPOSES.get(value) if isinstance(value, str) else None
    if found is None:
        raise UnknownPurpose(value)
    return found


class SendHours(BaseModel):
    """Local clock hours in which messages may be handed to a provider: ``opens`` <= time < ``closes``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    opens: time
    closes: time

    @model_validator(mode="after")
    def _check(self) -> SendHours:
        if self.opens.tzinfo is not None or self.closes.tzinfo is not None:
            raise ValueError("send hours are local clock times; leave out the UTC offset")
        if self.closes <= self.opens:
            raise ValueError(
                f"send hours close at {self.closes}, which is not after they open at {self.opens}"
            )
        return self

    def contains(self, local: datetime) -> bool:
        """Whether a local (time-zone aware) moment lies inside the hours."""
        return self.opens <= local.time().replace(tzinfo=None) < self.closes


class PurposeLimits(BaseModel):
    """Configurable hours and caps for one purpose; a field left out keeps the table's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    send_hours: dict[str, SendHours] | None = None
    """Per channel; a channel not listed may send at any hour."""
    caps_per_24h: dict[str, int] | None = None
    """Per channel, the most messages one recipient gets in any 24 hours; a channel not listed has no cap."""

    @field_validator("caps_per_24h")
    @classmethod
    def _positive_caps(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for channel, cap in (value or {}).items():
            if cap < 1:
                raise ValueError(f"the cap for {channel} must be at least 1, not {cap}")
        return value


class PolicySettings(BaseModel):
    """The configurable part of the policy: hours and caps per purpose, e.g. ``[consent.purposes.advertising]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    purposes: dict[Purpose, PurposeLimits] = Field(default_factory=dict)

    @field_validator("purposes", mode="before")
    @classmethod
    def _known_purposes(cls, value: Any) -> Any:
        # pydantic's own enum error hides the key behind a generic message; the operator needs to see it.
        if isinstance(value, Mapping):
            for key in value:
                _purpose(key)
        return value


@dataclass(frozen=True)
class PurposeRules:
    """Everything the law and the settings ask of messages with one purpose."""

    purpose: Purpose
    consent: ConsentNeeded
    unsubscribe_offered: bool
    """The message carries a way to opt out (footer, List-Unsubscribe)."""
    dnc_channels: frozenset[str]
    """Channels on which the national do-not-call register applies (Decree 91 art. 7: SMS and calls)."""
    sms_label_required: bool
    """An SMS starts with the advertising label (Decree 91 art. 15)."""
    opt_out_last: bool
    """The refusal instructions end the message (Decree 91 art. 16)."""
    send_hours: Mapping[str, SendHours] = field(default_factory=dict)
    caps_per_24h: Mapping[str, int] = field(default_factory=dict)


# Decree 91/2020 art. 13: advertising SMS only 07:00-22:00; at most 3 SMS and 3 e-mails per recipient per 24 h.
_ADVERTISING_SMS_HOURS = SendHours(opens=time(7, 0), closes=time(22, 0))

# The one table (docs/domain.md §1.1). Hours and caps here are defaults that PolicySettings may replace.
_TABLE: dict[Purpose, PurposeRules] = {
    Purpose.OFFICIAL_DUTY: PurposeRules(
        purpose=Purpose.OFFICIAL_DUTY,
        consent=ConsentNeeded.NONE,
        unsubscribe_offered=False,
        dnc_channels=frozenset(),
        sms_label_required=False,
        opt_out_last=False,
    ),
    Purpose.PUBLIC_INFORMATION: PurposeRules(
        purpose=Purpose.PUBLIC_INFORMATION,
        consent=ConsentNeeded.NOT_WITHDRAWN,
        unsubscribe_offered=True,
        dnc_channels=frozenset(),
        sms_label_required=False,
        opt_out_last=False,
    ),
    Purpose.ADVERTISING: PurposeRules(
        purpose=Purpose.ADVERTISING,
        consent=ConsentNeeded.PRIOR_GRANT,
        unsubscribe_offered=True,
        dnc_channels=frozenset({"sms"}),
        sms_label_required=True,
        opt_out_last=True,
        send_hours={"sms": _ADVERTISING_SMS_HOURS},
        caps_per_24h={"sms": 3, "email": 3},
    ),
}

_DEFAULT_SETTINGS = PolicySettings()


def rules_for(purpose: str, settings: PolicySettings | None = None) -> PurposeRules:
    """The rules for ``purpose`` with the settings' hours and caps; ``UnknownPurpose`` names a stranger."""
    rules = _TABLE[_purpose(purpose)]
    limits = (settings or _DEFAULT_SETTINGS).purposes.get(rules.purpose)
    if limits is None:
        return rules
    return replace(
        rules,
        send_hours=rules.send_hours if limits.send_hours is None else dict(limits.send_hours),
        caps_per_24h=rules.caps_per_24h if limits.caps_per_24h is None else dict(limits.caps_per_24h),
    )


# Decree 91/2020 art. 15: "QC", or "AD" for messages in English (docs/domain.md §1.1).
_SMS_LABELS = ("QC", "AD")


def accepted_sms_labels(purpose: str, *, brackets_allowed: bool) -> tuple[str, ...]:
    """The forms an SMS of ``purpose`` may start with, the preferred first; empty when it needs no label.

    Some providers refuse brackets (a provider setting); the bare label is then followed by a space, so a
    text starting "QCVN" is not read as labelled."""
    if not rules_for(purpose).sms_label_required:
        return ()
    if brackets_allowed:
        return tuple(f"[{label}]" for label in _SMS_LABELS)
    return tuple(f"{label} " for label in _SMS_LABELS)


def required_sms_label(purpose: str, *, brackets_allowed: bool) -> str | None:
    """The label an SMS of ``purpose`` starts with, or None; some providers refuse brackets, so "QC" then."""
    forms = accepted_sms_labels(purpose, brackets_allowed=brackets_allowed)
    return forms[0].strip() if forms else None


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; policy times must be aware")
    return moment


def next_allowed(
    now: datetime, purpose: str, channel: str, tz: ZoneInfo, settings: PolicySettings | None = None
) -> datetime:
    """``now`` when its send hours allow it, else the next opening (in UTC): a late message waits, never drops."""
    hours = rules_for(purpose, settings).send_hours.get(channel)
    if hours is None:
        return _aware(now)
    local = _aware(now).astimezone(tz)
    if hours.contains(local):
        return now
    day = (
        local.date() if local.time().replace(tzinfo=None) < hours.opens else local.date() + timedelta(days=1)
    )
    return datetime.combine(day, hours.opens, tzinfo=tz).astimezone(UTC)


def _in_window(sent: Iterable[datetime], now: datetime) -> list[datetime]:
    """The sends that still count at ``now``: later than exactly 24 hours before it, oldest first."""
    start = now - CAP_WINDOW
    return sorted(t for t in (_aware(s) for s in sent) if start < t <= now)


def within_cap(
    sent_times: Iterable[datetime],
    now: datetime,
    purpose: str,
    channel: str,
    settings: PolicySettings | None = None,
) -> bool:
    """Whether one more message fits the recipient's cap, given when earlier ones (of this purpose) were sent."""
    cap = rules_for(purpose, settings).caps_per_24h.get(channel)
    return cap is None or len(_in_window(sent_times, _aware(now))) < cap


def cap_frees_at(
    sent_times: Iterable[datetime],
    now: datetime,
    purpose: str,
    channel: str,
    settings: PolicySettings | None = None,
) -> datetime:
    """``now`` when the cap has room, else the moment enough earlier sends leave the 24-hour window."""
    cap = rules_for(purpose, settings).caps_per_24h.get(channel)
    counted = _in_window(sent_times, _aware(now))
    if cap is None or len(counted) < cap:
        return now
    # The send that must age out is the one that leaves exactly cap - 1 younger ones behind.
    return counted[len(counted) - cap] + CAP_WINDOW


@dataclass(frozen=True)
class RecipientState:
    """What the ledger and the lists say about one address for one channel and purpose."""

    consent: ConsentState = ConsentState.UNKNOWN
    suppressed: bool = False
    on_do_not_call: bool = False
    on_campaign_list: bool = False
    """On the campaign's own exclusion list: nothing goes, whatever the purpose or consent."""
    recent_sends: tuple[datetime, ...] = ()
    """When this address got messages of this purpose and channel, at least over the last 24 hours."""


@dataclass(frozen=True)
class Allowed:
    """Send now."""


@dataclass(frozen=True)
class Excluded:
    """Send nothing, for ``reason``."""

    reason: ExclusionReason


@dataclass(frozen=True)
class Deferred:
    """Send, but not before ``until`` (UTC)."""

    until: datetime


Decision = Allowed | Excluded | Deferred


def _exclusion(rules: PurposeRules, channel: str, state: RecipientState) -> ExclusionReason | None:
    if state.suppressed:
        return ExclusionReason.SUPPRESSED
    if state.on_campaign_list:
        return ExclusionReason.CAMPAIGN_LIST
    if rules.consent is not ConsentNeeded.NONE and state.consent is ConsentState.WITHDRAWN:
        return ExclusionReason.WITHDRAWN
    if rules.consent is ConsentNeeded.PRIOR_GRANT and state.consent is not ConsentState.GRANTED:
        return ExclusionReason.NO_PRIOR_CONSENT
    if channel in rules.dnc_channels and state.on_do_not_call:
        return ExclusionReason.DO_NOT_CALL
    return None


def decide(
    state: RecipientState,
    *,
    now: datetime,
    purpose: str,
    channel: str,
    tz: ZoneInfo,
    settings: PolicySettings | None = None,
) -> Decision:
    """Whether one message of ``purpose`` on ``channel`` goes to this recipient now, later, or never."""
    rules = rules_for(purpose, settings)
    reason = _exclusion(rules, channel, state)
    if reason is not None:
        return Excluded(reason)
    # Each step only moves the moment later; the cap's moment depends on past sends only, so this settles
    # after at most one round per send that has to age out.
    moment = _aware(now)
    while True:
        opening = next_allowed(moment, purpose, channel, tz, settings)
        freed = cap_frees_at(state.recent_sends, opening, purpose, channel, settings)
        if freed == moment:
            break
        moment = freed
    return Allowed() if moment == now else Deferred(moment.astimezone(UTC))
