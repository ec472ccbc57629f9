"""Erasure tombstones: the keyed hash recognises an address in any spelling, only under the same secret, and
``erased_among`` answers for long lists page by page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from consent.erasure import ErasureKeyMissing, erased_among, erasures_of, record_erasure, subject_hash

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SECRET = "bí mật"


def erase(session: Session, channel: str, address: str, reference: str = "HS-1") -> None:
    record_erasure(session, reference=reference, subject_hash=subject_hash(SECRET, channel, address),
                   summary={"contacts": 1}, erased_by="quan_tri", at=T0)  # fmt: skip


def test_the_hash_is_keyed_and_case_insensitive_for_email() -> None:
    assert subject_hash(SECRET, "email", "An@Example.vn") == subject_hash(SECRET, "email", "an@example.vn")
    assert subject_hash(SECRET, "email", "an@example.vn") != subject_hash("other", "email", "an@example.vn")
    assert len(subject_hash(SECRET, "sms", "+84905123456")) == 64
    with pytest.raises(ErasureKeyMissing):
        subject_hash("", "sms", "+84905123456")


def test_erased_among_keeps_the_spelling_given(session: Session) -> None:
    erase(session, "email", "an@example.vn")
    erase(session, "sms", "+84905123456")
    assert erased_among(session, secret=SECRET, channel="email",
                        addresses=["AN@example.vn", "binh@example.vn"]) == {"AN@example.vn"}  # fmt: skip
    assert erased_among(session, secret=SECRET, channel="sms", addresses=["+84905123456"]) == {"+84905123456"}
    assert erased_among(session, secret="other", channel="sms", addresses=["+84905123456"]) == set()


def test_erased_among_pages_long_lists(session: Session) -> None:
    numbers = [f"+8490{n:07d}" for n in range(5200)]
    erase(session, "sms", numbers[5100])
    assert erased_among(session, secret=SECRET, channel="sms", addresses=numbers) == {numbers[5100]}


def test_erased_among_with_no_tombstone_finds_no_one_and_still_wants_the_secret(session: Session) -> None:
    # With no tombstone at all no hash is computed; the answer is the one hashing would give.
    assert erased_among(session, secret=SECRET, channel="sms", addresses=["+84905123456"]) == set()
    with pytest.raises(ErasureKeyMissing):
        erased_among(session, secret="", channel="sms", addresses=["+84905123456"])
    erase(session, "sms", "+84905000000")  # someone else's tombstone: hashes are now compared
    assert erased_among(session, secret=SECRET, channel="sms", addresses=["+84905123456"]) == set()
    erase(session, "sms", "+84905123456")
    assert erased_among(session, secret=SECRET, channel="sms",
                        addresses=["+84905123456", "+84905111111"]) == {"+84905123456"}  # fmt: skip


def test_erasures_of_lists_every_tombstone_oldest_first(session: Session) -> None:
    erase(session, "sms", "+84905123456", "HS-1")
    erase(session, "sms", "+84905123456", "HS-2")
    found = erasures_of(session, subject_hash(SECRET, "sms", "+84905123456"))
    assert [t.reference for t in found] == ["HS-1", "HS-2"]
