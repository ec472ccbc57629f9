"""The purpose table, send hours, the 24-hour caps and the decision for one recipient, on explicit times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from consent.policy import (
    Allowed,
    ConsentNeeded,
    ConsentState,
    Deferred,
    Excluded,
    ExclusionReason,
    PolicySettings,
    Purpose,
    RecipientState,
    UnknownPurpose,
    accepted_sms_labels,
    cap_frees_at,
    decide,
    next_allowed,
    required_sms_label,
    rules_for,
    within_cap,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")  # UTC+7 all year: Vietnam has no daylight saving time


def local(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=VN)


def test_the_table_gives_each_purpose_its_rules() -> None:
    official = rules_for("official_duty")
    public = rules_for("public_information")
    advertising = rules_for("advertising")

    assert (official.consent, official.unsubscribe_offered) == (ConsentNeeded.NONE, False)
    assert (public.consent, public.unsubscribe_offered) == (ConsentNeeded.NOT_WITHDRAWN, True)
    assert (advertising.consent, advertising.unsubscribe_offered) == (ConsentNeeded.PRIOR_GRANT, True)
    assert advertising.dnc_channels == frozenset({"sms"})
    assert not official.dnc_channels
    assert not public.dnc_channels
    assert advertising.sms_label_required
    assert advertising.opt_out_last
    assert not public.sms_label_required
    assert dict(advertising.caps_per_24h) == {"sms": 3, "email": 3}
    assert advertising.send_hours["sms"].opens == time(7, 0)
    assert advertising.send_hours["sms"].closes == time(22, 0)
    assert not official.send_hours
    assert not public.caps_per_24h


def test_an_unknown_purpose_is_named_in_the_error() -> None:
    with pytest.raises(
        UnknownPurpose,
        match=r"unknown purpose 'marketing' \(known purposes: official_duty, public_information",
    ):
        rules_for("marketing")


def test_settings_with_an_unknown_purpose_are_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="unknown purpose 'adverts'"):
        PolicySettings.model_validate({"purposes": {"adverts": {"caps_per_24h": {"sms": 1}}}})


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"caps_per_24h": {"sms": 0}}, "at least 1"),
        ({"send_hours": {"sms": {"opens": "22:00", "closes": "07:00"}}}, "not after they open"),
        ({"quiet": True}, "Extra inputs"),
    ],
)
def test_bad_limits_are_refused(limits: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PolicySettings.model_validate({"purposes": {"advertising": limits}})


def test_settings_replace_hours_and_caps_field_by_field() -> None:
    settings = PolicySettings.model_validate(
        {
            "purposes": {
                "advertising": {"caps_per_24h": {"sms": 1}},
                "public_information": {"send_hours": {"sms": {"opens": "06:30", "closes": "21:00"}}},
            }
        }
    )

    advertising = rules_for("advertising", settings)
    public = rules_for(Purpose.PUBLIC_INFORMATION, settings)

    assert dict(advertising.caps_per_24h) == {"sms": 1}
    assert advertising.send_hours["sms"].closes == time(22, 0)  # not configured: the default stays
    assert public.send_hours["sms"].opens == time(6, 30)
    assert public.consent is ConsentNeeded.NOT_WITHDRAWN


def test_the_advertising_label_depends_on_whether_the_provider_allows_brackets() -> None:
    assert required_sms_label("advertising", brackets_allowed=True) == "[QC]"
    assert required_sms_label("advertising", brackets_allowed=False) == "QC"
    assert required_sms_label("public_information", brackets_allowed=True) is None
    assert accepted_sms_labels("advertising", brackets_allowed=True) == ("[QC]", "[AD]")
    assert accepted_sms_labels("advertising", brackets_allowed=False) == ("QC ", "AD ")
    assert accepted_sms_labels("official_duty", brackets_allowed=False) == ()


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(2026, 11, 30, 7, 0), local(2026, 11, 30, 7, 0)),  # opens at 07:00 sharp
        (local(2026, 11, 30, 6, 59, 59), local(2026, 11, 30, 7, 0)),
        (local(2026, 11, 30, 21, 59, 59), local(2026, 11, 30, 21, 59, 59)),
        (local(2026, 11, 30, 22, 0), local(2026, 12, 1, 7, 0)),  # 22:00 is already closed
        (local(2026, 11, 30, 23, 30), local(2026, 12, 1, 7, 0)),
        (local(2026, 12, 31, 22, 15), local(2027, 1, 1, 7, 0)),  # over the year's end
        (local(2026, 12, 1, 0, 0), local(2026, 12, 1, 7, 0)),
    ],
)
def test_advertising_sms_waits_for_07_00_and_stops_at_22_00(now: datetime, expected: datetime) -> None:
    assert next_allowed(now, "advertising", "sms", VN) == expected


def test_an_allowed_moment_comes_back_unchanged_and_a_deferred_one_in_utc() -> None:
    inside = local(2026, 11, 30, 12, 0)
    deferred = next_allowed(local(2026, 11, 30, 23, 0), "advertising", "sms", VN)

    assert next_allowed(inside, "advertising", "sms", VN) is inside
    assert deferred.tzinfo is UTC
    assert deferred == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 07:00 at UTC+7


def test_vietnam_hours_hold_on_the_days_other_countries_change_their_clocks() -> None:
    # 2026-03-29 and 2026-10-25 are Europe's DST switches, 2026-03-08 and 2026-11-01 America's.
    for day in ((3, 8), (3, 29), (10, 25), (11, 1)):
        opening = next_allowed(local(2026, *day, 5, 0), "advertising", "sms", VN)
        assert opening == datetime(2026, *day, 0, 0, tzinfo=UTC)


def test_a_utc_moment_is_judged_in_local_time() -> None:
    # 15:30 UTC is 22:30 in Đà Nẵng: closed, although 15:30 would be open as a local time.
    now = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)

    assert next_allowed(now, "advertising", "sms", VN) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def test_channels_and_purposes_without_hours_send_at_any_time() -> None:
    night = local(2026, 11, 30, 3, 0)

    assert next_allowed(night, "advertising", "email", VN) == night
    assert next_allowed(night, "public_information", "sms", VN) == night
    assert next_allowed(night, "official_duty", "sms", VN) == night


def test_configured_hours_apply_to_any_purpose() -> None:
    settings = PolicySettings.model_validate(
        {"purposes": {"public_information": {"send_hours": {"sms": {"opens": "08:00", "closes": "20:00"}}}}}
    )

    assert next_allowed(local(2026, 11, 30, 20, 0), "public_information", "sms", VN, settings) == local(
        2026, 12, 1, 8, 0
    )


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        next_allowed(datetime(2026, 11, 30, 12, 0), "advertising", "sms", VN)  # noqa: DTZ001


NOW = local(2026, 11, 30, 12, 0)


def test_the_cap_counts_the_last_24_hours_only() -> None:
    two_recent = [NOW - timedelta(hours=1), NOW - timedelta(hours=23, minutes=59, seconds=59)]
    exactly_a_day_old = NOW - timedelta(hours=24)

    assert within_cap([*two_recent, exactly_a_day_old], NOW, "advertising", "sms")
    assert not within_cap([*two_recent, exactly_a_day_old + timedelta(seconds=1)], NOW, "advertising", "sms")


def test_the_cap_is_per_purpose_and_channel() -> None:
    three = [NOW - timedelta(hours=h) for h in (1, 2, 3)]

    assert not within_cap(three, NOW, "advertising", "sms")
    assert not within_cap(three, NOW, "advertising", "email")
    assert within_cap(three, NOW, "advertising", "push")
    assert within_cap(three * 10, NOW, "public_information", "sms")


def test_the_cap_frees_when_the_right_send_ages_out() -> None:
    sends = [NOW - timedelta(hours=h) for h in (20, 10, 5, 1)]  # four in the window, cap three

    freed = cap_frees_at(sends, NOW, "advertising", "sms")

    assert freed == NOW - timedelta(hours=10) + timedelta(hours=24)  # both the 20 h and the 10 h one must go
    assert within_cap(sends, freed, "advertising", "sms")
    assert not within_cap(sends, freed - timedelta(microseconds=1), "advertising", "sms")
    assert cap_frees_at(sends[:2], NOW, "advertising", "sms") == NOW


def test_the_sliding_cap_over_a_day_of_sends() -> None:
    settings = PolicySettings.model_validate({"purposes": {"advertising": {"caps_per_24h": {"email": 2}}}})
    sent: list[datetime] = []
    moment = local(2026, 11, 30, 0, 0)
    while moment < local(2026, 12, 3, 0, 0):
        if within_cap(sent, moment, "advertising", "email", settings):
            sent.append(moment)
        moment += timedelta(minutes=30)

    for when in sent:
        window = [s for s in sent if when - timedelta(hours=24) < s <= when]
        assert len(window) <= 2
    assert len(sent) == 6  # two per 24 hours over three days


GRANTED = RecipientState(consent=ConsentState.GRANTED)


@pytest.mark.parametrize(
    ("purpose", "state", "reason"),
    [
        ("advertising", RecipientState(), ExclusionReason.NO_PRIOR_CONSENT),
        ("advertising", RecipientState(consent=ConsentState.WITHDRAWN), ExclusionReason.WITHDRAWN),
        (
            "advertising",
            RecipientState(consent=ConsentState.GRANTED, on_do_not_call=True),
            ExclusionReason.DO_NOT_CALL,
        ),
        (
            "advertising",
            RecipientState(consent=ConsentState.GRANTED, suppressed=True),
            ExclusionReason.SUPPRESSED,
        ),
        ("public_information", RecipientState(consent=ConsentState.WITHDRAWN), ExclusionReason.WITHDRAWN),
        ("public_information", RecipientState(suppressed=True), ExclusionReason.SUPPRESSED),
        ("official_duty", RecipientState(suppressed=True), ExclusionReason.SUPPRESSED),
        # A campaign's own list binds every purpose, whatever the ledger says.
        ("official_duty", RecipientState(on_campaign_list=True), ExclusionReason.CAMPAIGN_LIST),
        (
            "advertising",
            RecipientState(consent=ConsentState.GRANTED, on_campaign_list=True),
            ExclusionReason.CAMPAIGN_LIST,
        ),
    ],
)
def test_who_is_excluded_and_why(purpose: str, state: RecipientState, reason: ExclusionReason) -> None:
    assert decide(state, now=NOW, purpose=purpose, channel="sms", tz=VN) == Excluded(reason)


@pytest.mark.parametrize(
    ("purpose", "state", "channel"),
    [
        ("official_duty", RecipientState(consent=ConsentState.WITHDRAWN, on_do_not_call=True), "sms"),
        ("public_information", RecipientState(), "sms"),
        ("public_information", RecipientState(on_do_not_call=True), "sms"),
        ("advertising", GRANTED, "sms"),
        ("advertising", RecipientState(consent=ConsentState.GRANTED, on_do_not_call=True), "email"),
    ],
)
def test_who_is_allowed(purpose: str, state: RecipientState, channel: str) -> None:
    assert decide(state, now=NOW, purpose=purpose, channel=channel, tz=VN) == Allowed()


def test_outside_the_hours_a_message_is_deferred_not_dropped() -> None:
    decision = decide(GRANTED, now=local(2026, 11, 30, 22, 0), purpose="advertising", channel="sms", tz=VN)

    assert decision == Deferred(local(2026, 12, 1, 7, 0))


def test_over_the_cap_a_message_waits_for_room() -> None:
    sends = tuple(NOW - timedelta(hours=h) for h in (3, 2, 1))
    state = RecipientState(consent=ConsentState.GRANTED, recent_sends=sends)

    decision = decide(state, now=NOW, purpose="advertising", channel="email", tz=VN)

    assert decision == Deferred(NOW + timedelta(hours=21))


def test_when_the_cap_frees_inside_the_hours_the_message_goes_then() -> None:
    # Three SMS yesterday evening: the first ages out at 20:00 today, before the 22:00 close.
    evening = local(2026, 11, 29, 20, 0)
    sends = (evening, evening + timedelta(minutes=90), evening + timedelta(minutes=91))
    state = RecipientState(consent=ConsentState.GRANTED, recent_sends=sends)

    decision = decide(state, now=local(2026, 11, 30, 12, 0), purpose="advertising", channel="sms", tz=VN)

    assert decision == Deferred(local(2026, 11, 30, 20, 0))


def test_a_cap_that_frees_after_closing_time_waits_for_the_next_opening() -> None:
    sends = (local(2026, 11, 29, 22, 30), local(2026, 11, 29, 23, 0), local(2026, 11, 30, 1, 0))
    state = RecipientState(consent=ConsentState.GRANTED, recent_sends=sends)

    decision = decide(state, now=local(2026, 11, 30, 21, 0), purpose="advertising", channel="sms", tz=VN)

    # Room from 22:30 today, when the hours are closed: 07:00 tomorrow, when the cap has room too.
    assert decision == Deferred(local(2026, 12, 1, 7, 0))
