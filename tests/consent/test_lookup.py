"""The consent look-ups send a page of keys as one parameter (``consent.lookup``: an array on PostgreSQL, a
JSON array on SQLite); the same rows are found as by comparing each key, whatever letters the keys hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from broadcaster.db.engine import make_engine
from consent.erasure import erased_among, record_erasure, subject_hash
from consent.exclusions import add_exclusions, excluded_among
from consent.ledger import states_among, withdraw
from consent.models import consent_metadata
from consent.policy import ConsentState
from consent.suppression import suppress, suppressed_among

AT = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SECRET = "bí mật"
# Letters SQLite's JSON and PostgreSQL's arrays must carry unchanged: Vietnamese, a quote, a comma, a brace,
# a character outside the Basic Multilingual Plane.
ODD = ["Ngọc.Trâm@Example.vn", 'o"quote@example.vn', "a,b@example.vn", "{x}@example.vn", "😀@example.vn"]
PLAIN = [f"dan{n}@example.vn" for n in range(3000)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else "sqlite://"
    engine = make_engine(url)
    consent_metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_each_lookup_finds_the_listed_spellings_and_only_them(session: Session) -> None:
    listed = [*ODD, PLAIN[2500]]
    for address in listed:
        suppress(session, channel="email", address=address, reason="refused", source="test", at=AT)
        withdraw(session, channel="email", address=address, purpose="public_information", source="import",
                 recorded_by="test", at=AT)  # fmt: skip
        record_erasure(session, reference="HS-1", subject_hash=subject_hash(SECRET, "email", address),
                       summary={}, erased_by="test", at=AT)  # fmt: skip
    add_exclusions(session, campaign_id="c1", addresses=[("email", a) for a in listed], list_name="l",
                   added_by="test", at=AT)  # fmt: skip
    asked = [a.upper() for a in ODD] + PLAIN  # other spellings of the same keys, and many strangers
    expected = {a.upper() for a in ODD} | {PLAIN[2500]}
    assert suppressed_among(session, channel="email", addresses=asked) == expected
    assert excluded_among(session, campaign_id="c1", channel="email", addresses=asked) == expected
    assert erased_among(session, secret=SECRET, channel="email", addresses=asked) == expected
    states = states_among(session, "email", "public_information", asked)
    assert states == dict.fromkeys(expected, ConsentState.WITHDRAWN)
    assert excluded_among(session, campaign_id="c2", channel="email", addresses=asked) == set()
    assert suppressed_among(session, channel="sms", addresses=asked) == set()
