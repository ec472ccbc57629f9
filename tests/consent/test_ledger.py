"""The consent ledger: grants and withdrawals, the latest event wins, rows are never changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent import ledger
from consent.ledger import ConsentError
from consent.models import ConsentEvent
from consent.policy import ConsentState

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PHONE = "+84905123456"
EMAIL = "An.Nguyen@example.vn"


def _grant(session: Session, notices: Path, *, at: datetime = T0, **overrides: Any) -> ConsentEvent:
    fields: dict[str, Any] = {
        "channel": "sms",
        "address": PHONE,
        "purpose": "advertising",
        "source": "web_form",
        "notice_version": "v1",
        "recorded_by": "web",
        "evidence": "form #42",
    }
    fields.update(overrides)
    return ledger.grant(session, notices_dir=notices, at=at, **fields)


def _withdraw(session: Session, *, at: datetime = T0, **overrides: Any) -> ConsentEvent:
    fields: dict[str, Any] = {
        "channel": "sms",
        "address": PHONE,
        "purpose": "advertising",
        "source": "sms_keyword",
        "recorded_by": "smpp-inbound",
    }
    fields.update(overrides)
    return ledger.withdraw(session, at=at, **fields)


def _rows(session: Session) -> list[tuple[object, ...]]:
    columns = [c for c in ConsentEvent.__table__.columns]
    return [tuple(row) for row in session.execute(select(*columns).order_by(ConsentEvent.id))]


def test_nothing_recorded_is_none(session: Session) -> None:
    assert ledger.current(session, "sms", PHONE, "advertising") is None


def test_the_latest_event_wins(session: Session, notices: Path) -> None:
    _grant(session, notices)
    assert ledger.current(session, "sms", PHONE, "advertising") is True
    _withdraw(session, at=T0 + timedelta(minutes=1))
    assert ledger.current(session, "sms", PHONE, "advertising") is False
    _grant(session, notices, at=T0 + timedelta(minutes=2))
    assert ledger.current(session, "sms", PHONE, "advertising") is True
    latest = ledger.latest(session, "sms", PHONE, "advertising")
    assert latest is not None
    assert latest.action == "grant"
    assert latest.id == max(event.id for event in ledger.history(session, "sms", PHONE))


def test_order_is_by_recorded_time_not_by_insertion(session: Session, notices: Path) -> None:
    _withdraw(session, at=T0 + timedelta(hours=1))
    _grant(session, notices, at=T0)  # recorded late, happened earlier
    assert ledger.current(session, "sms", PHONE, "advertising") is False


def test_purposes_and_channels_are_separate(session: Session, notices: Path) -> None:
    _withdraw(session, purpose="public_information")
    assert ledger.current(session, "sms", PHONE, "advertising") is None
    assert ledger.current(session, "email", PHONE, "public_information") is None
    assert ledger.current(session, "sms", PHONE, "public_information") is False


def test_email_addresses_are_keyed_case_insensitively(session: Session) -> None:
    _withdraw(session, channel="email", address=EMAIL, purpose="public_information", source="email_link")
    assert ledger.current(session, "email", EMAIL.lower(), "public_information") is False
    assert [e.address for e in ledger.history(session, "email", EMAIL.upper())] == [EMAIL.lower()]


def test_history_lists_every_purpose_oldest_first(session: Session, notices: Path) -> None:
    _withdraw(session, purpose="public_information", at=T0 + timedelta(days=1))
    _grant(session, notices)
    events = ledger.history(session, "sms", PHONE)
    assert [(e.action, e.purpose) for e in events] == [
        ("grant", "advertising"),
        ("withdraw", "public_information"),
    ]
    assert (events[0].notice_version, events[0].evidence, events[0].source) == ("v1", "form #42", "web_form")


def test_withdrawn_among_keeps_the_spelling_given(session: Session, notices: Path) -> None:
    other = "+84905000001"
    _withdraw(session, channel="email", address=EMAIL, purpose="advertising", source="email_link")
    _withdraw(session, address=other)
    _grant(session, notices, address=other, at=T0 + timedelta(seconds=1))
    _withdraw(session, address=PHONE)
    assert ledger.withdrawn_among(session, "sms", "advertising", [PHONE, other, "+84905000002"]) == {PHONE}
    assert ledger.withdrawn_among(session, "email", "advertising", [EMAIL.upper(), "b@example.vn"]) == {
        EMAIL.upper()
    }
    assert ledger.withdrawn_among(session, "sms", "public_information", [PHONE]) == set()


def test_states_among_says_granted_withdrawn_or_leaves_the_address_out(
    session: Session, notices: Path
) -> None:
    granted, regranted, never = "+84905000001", "+84905000002", "+84905000003"
    _grant(session, notices, address=granted)
    _withdraw(session, address=regranted)
    _grant(session, notices, address=regranted, at=T0 + timedelta(seconds=1))
    _withdraw(session, address=PHONE)
    _grant(session, notices, channel="email", address=EMAIL, purpose="advertising")

    states = ledger.states_among(session, "sms", "advertising", [PHONE, granted, regranted, never])
    assert states == {
        PHONE: ConsentState.WITHDRAWN,
        granted: ConsentState.GRANTED,
        regranted: ConsentState.GRANTED,
    }
    assert ledger.states_among(session, "email", "advertising", [EMAIL.upper()]) == {
        EMAIL.upper(): ConsentState.GRANTED
    }
    assert ledger.states_among(session, "sms", "public_information", [PHONE, granted]) == {}


def test_withdrawn_among_pages_long_lists(session: Session) -> None:
    phones = [f"+8490500{n:04d}" for n in range(1200)]
    for phone in phones[::100]:
        _withdraw(session, address=phone)
    assert ledger.withdrawn_among(session, "sms", "advertising", phones) == set(phones[::100])


def test_a_notice_version_that_does_not_exist_names_the_file_and_writes_nothing(
    session: Session, notices: Path
) -> None:
    with pytest.raises(ConsentError, match=r"advertising/v9\.md"):
        _grant(session, notices, notice_version="v9")
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


@pytest.mark.parametrize("version", ["../v1", "v1/../../x", "", ".hidden"])
def test_a_notice_version_is_a_plain_name(session: Session, notices: Path, version: str) -> None:
    with pytest.raises(ConsentError, match="not valid"):
        _grant(session, notices, notice_version=version)
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("purpose", "marketing", "unknown purpose"),
        ("source", "fax", "unknown source"),
        ("channel", "zalo", "unknown channel"),
        ("recorded_by", " ", "recorded_by"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(
    session: Session, notices: Path, field: str, value: str, message: str
) -> None:
    bad: dict[str, Any] = {field: value}
    with pytest.raises(ConsentError, match=message):
        _grant(session, notices, **bad)
    with pytest.raises(ConsentError, match=message):
        _withdraw(session, **bad)
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_staff_must_give_a_reason(session: Session, notices: Path) -> None:
    with pytest.raises(ConsentError, match="reason"):
        _withdraw(session, source="staff", recorded_by="lan")
    with pytest.raises(ConsentError, match="reason"):
        _grant(session, notices, source="staff", recorded_by="lan", reason="  ")
    event = _withdraw(session, source="staff", recorded_by="lan", reason="asked at the desk")
    assert event.reason == "asked at the desk"


def test_no_public_function_changes_an_earlier_row(session: Session, notices: Path) -> None:
    _grant(session, notices)
    _withdraw(session, channel="email", address=EMAIL, purpose="public_information", source="email_link")
    session.commit()
    before = _rows(session)
    later = T0 + timedelta(days=1)
    _withdraw(session, at=later)
    _grant(session, notices, at=later + timedelta(seconds=1), notice_version="v1")
    _withdraw(
        session,
        channel="email",
        address=EMAIL,
        purpose="public_information",
        source="staff",
        recorded_by="lan",
        reason="again",
        at=later,
    )
    ledger.history(session, "sms", PHONE)
    ledger.current(session, "sms", PHONE, "advertising")
    ledger.latest(session, "sms", PHONE, "advertising")
    ledger.withdrawn_among(session, "sms", "advertising", [PHONE])
    ledger.states_among(session, "sms", "advertising", [PHONE])
    ledger.states_of(session, "sms", "advertising", {PHONE: [PHONE]})
    ledger.notice_path(notices, "advertising", "v1")
    session.commit()
    session.expire_all()
    assert _rows(session)[: len(before)] == before
    assert len(_rows(session)) == len(before) + 3


def test_every_public_function_is_covered_by_the_append_only_test() -> None:
    public = {name for name in vars(ledger) if callable(getattr(ledger, name)) and not name.startswith("_")}
    imported = {
        "Iterable",
        "Mapping",
        "Path",
        "Session",
        "datetime",
        "select",
        "address_key",
        "keys_of",
        "keys_among",
        "ConsentEvent",
        "ConsentError",
        "ConsentState",
    }
    assert public - imported == {
        "grant",
        "withdraw",
        "history",
        "current",
        "latest",
        "withdrawn_among",
        "states_among",
        "states_of",
        "notice_path",
    }
