"""``broadcaster.eligibility``: the policy's verdicts for a page of addresses in a few queries whatever its
size, caps counted across the page itself, and the claimed window left out of the recent sends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from broadcaster.context import AppContext
from broadcaster.db.models import Message
from broadcaster.eligibility import DEFERRED_BY_CAP, DEFERRED_BY_HOURS, PolicyScope, Verdict, verdicts
from broadcaster.vocabulary import MessageKind, MessageStatus
from consent import ledger
from consent.dnc import replace_register
from consent.erasure import record_erasure, subject_hash
from consent.exclusions import add_exclusions
from consent.policy import PolicySettings
from consent.suppression import suppress

VN = ZoneInfo("Asia/Ho_Chi_Minh")
A, B = "+84912000001", "+84912000002"


def scope(purpose: str) -> PolicyScope:
    return PolicyScope(
        purpose=purpose, channel="sms", campaign_id="quang-cao", tz=VN, settings=PolicySettings()
    )


def add_sent(context: AppContext, address: str, count: int, *, status: MessageStatus) -> list[int]:
    now = context.clock.now()
    rows = [
        Message(
            idempotency_key=f"earlier:{address}:{status.value}:{i}",
            kind=MessageKind.CAMPAIGN,
            channel="sms",
            provider="sms_main",
            address=address,
            address_key=address,
            purpose="advertising",
            status=status,
            body="[QC] truoc do",
            attempts=1,
            created_at=now - timedelta(hours=i + 1),
            claimed_at=now - timedelta(hours=i + 1),
            sent_at=now - timedelta(hours=i + 1) if status == MessageStatus.SENT else None,
        )
        for i in range(count)
    ]
    with context.sessions.begin() as session:
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


@pytest.fixture
def granted(context: AppContext) -> None:
    with context.sessions.begin() as session:
        for address in (A, B):
            ledger.grant(
                session,
                channel="sms",
                address=address,
                purpose="advertising",
                source="web_form",
                notice_version="v1",
                notices_dir=context.notices_dir,
                recorded_by="test",
                at=context.clock.now() - timedelta(days=1),
            )


def test_an_address_twice_in_one_page_counts_its_first_message_against_the_cap(
    context: AppContext, granted: None
) -> None:
    add_sent(context, A, 2, status=MessageStatus.SENT)
    with context.readers() as session:
        found = verdicts(session, scope("advertising"), [A, B, A], at=context.clock.now())
    assert found[:2] == [Verdict(), Verdict()]
    # The older of the two earlier sends ages out at 06:00 local tomorrow; advertising SMS start at 07:00.
    assert found[2] == Verdict(not_before=context.clock.now() + timedelta(hours=23), deferral=DEFERRED_BY_CAP)


def test_a_message_claimed_elsewhere_counts_but_the_window_judged_does_not(
    context: AppContext, granted: None
) -> None:
    add_sent(context, A, 2, status=MessageStatus.SENT)
    in_flight = add_sent(context, A, 1, status=MessageStatus.SENDING)
    with context.readers() as session:
        (elsewhere,) = verdicts(session, scope("advertising"), [A], at=context.clock.now())
        (ours,) = verdicts(session, scope("advertising"), [A], at=context.clock.now(), skip_ids=in_flight)
    assert elsewhere.deferral == DEFERRED_BY_CAP
    assert ours == Verdict()


@pytest.mark.parametrize(
    ("purpose", "most"), [("official_duty", 2), ("public_information", 3), ("advertising", 5)]
)
def test_a_page_costs_a_few_queries_whatever_its_size(context: AppContext, purpose: str, most: int) -> None:
    """Only the lookups the purpose needs: official duty reads no ledger, only advertising reads the
    do-not-call register and the recent sends (it has a cap on SMS)."""
    addresses = [f"+849120{n:05d}" for n in range(400)]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = context.readers.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        with context.readers() as session:
            found = verdicts(session, scope(purpose), addresses, at=context.clock.now())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == most, selects
    assert len(found) == len(addresses)


def test_a_full_cap_that_frees_before_the_hours_open_is_a_wait_for_the_hours(
    context: AppContext, granted: None
) -> None:
    add_sent(context, A, 3, status=MessageStatus.SENT)  # 05:00, 06:00 and 07:00 local today
    evening = context.clock.now() + timedelta(hours=14, minutes=30)  # 22:30 local
    with context.readers() as session:
        (found,) = verdicts(session, scope("advertising"), [A], at=evening)
    assert found == Verdict(not_before=context.clock.now() + timedelta(hours=23), deferral=DEFERRED_BY_HOURS)


def test_a_person_erased_on_request_counts_as_withdrawn_while_the_key_is_kept(context: AppContext) -> None:
    key = "khoa-bi-mat-cua-thanh-pho"
    with context.sessions.begin() as session:
        record_erasure(
            session,
            reference="HS-2026-017",
            subject_hash=subject_hash(key, "sms", A),
            summary={"contacts": 1},
            erased_by="admin",
            at=context.clock.now(),
        )
    informing = replace(scope("public_information"), erasure_key=key)
    with context.readers() as session:
        found = verdicts(session, informing, [A, B], at=context.clock.now())
        rotated = verdicts(
            session, replace(informing, erasure_key="another-key"), [A], at=context.clock.now()
        )
        official = verdicts(
            session, replace(scope("official_duty"), erasure_key=key), [A], at=context.clock.now()
        )
    assert found == [Verdict(exclusion="opted out of this channel"), Verdict()]
    assert rotated == [Verdict()]  # why the key must never change (docs/domain.md §1.2)
    assert official == [Verdict()]  # official duty asks no consent; the erased contact row is gone anyway


def test_one_address_is_judged_in_one_query_as_a_page_would_judge_it(
    context: AppContext, granted: None
) -> None:
    """The single-message API's path (one address: the lookups as one statement, then the recent sends)
    gives each address the verdict the page path gives it, for every kind of refusal."""
    key = "khoa-bi-mat-cua-thanh-pho"
    withdrawn, suppressed, listed, registered, erased = (f"+8491200010{n}" for n in range(5))
    now = context.clock.now()
    with context.sessions.begin() as session:
        for address in (withdrawn, suppressed, listed, registered, erased):
            ledger.grant(session, channel="sms", address=address, purpose="advertising", source="web_form",
                         notice_version="v1", notices_dir=context.notices_dir, recorded_by="test",
                         at=now - timedelta(days=2))  # fmt: skip
        ledger.withdraw(session, channel="sms", address=withdrawn, purpose="advertising", source="sms_keyword",
                        recorded_by="test", at=now - timedelta(days=1))  # fmt: skip
        suppress(session, channel="sms", address=suppressed, reason="bounced", source="test", at=now)
        add_exclusions(session, campaign_id="quang-cao", addresses=[("sms", listed)], list_name="ds",
                       added_by="test", at=now)  # fmt: skip
        replace_register(session, phones=[registered], source_name="dnc.csv", sha256="0" * 64,
                         imported_by="test", at=now)  # fmt: skip
        record_erasure(session, reference="HS-1", subject_hash=subject_hash(key, "sms", erased),
                       summary={}, erased_by="admin", at=now)  # fmt: skip
    add_sent(context, A, 2, status=MessageStatus.SENT)
    everyone = [A, B, withdrawn, suppressed, listed, registered, erased, "+84912999999"]
    for purpose in ("official_duty", "public_information", "advertising"):
        judged = replace(scope(purpose), erasure_key=key)
        with context.readers() as session:
            page = verdicts(session, judged, [*everyone, A], at=now)
            alone = [verdicts(session, judged, [address], at=now)[0] for address in everyone]
        assert alone == page[: len(everyone)], purpose
        if purpose == "advertising":
            assert len({v.exclusion for v in alone}) == 6  # none, and five different refusals
    statements: list[str] = []
    engine = context.readers.kw["bind"]

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with context.readers() as session:
            verdicts(session, replace(scope("advertising"), erasure_key=key), [A], at=now)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
