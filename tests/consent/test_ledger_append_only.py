"""The ledger is append-only whatever is called, in whatever order: random sequences of every public function
of ``consent.ledger`` (grants, withdrawals, and every reader, including ones added later) never change or
remove a row that was there before; each grant or withdrawal adds exactly one.

Readers are called by their parameter names from a pool of values, so a new public function is exercised
without editing this test; one with a parameter the pool does not know fails here and names it.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import ledger
from consent.ledger import ConsentError
from consent.models import ConsentEvent
from consent.suppression import keys_of

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ADDRESSES = {
    "sms": ["+84905123456", "+84912000001"],
    "email": ["An.Nguyen@example.vn", "an.nguyen@EXAMPLE.vn", "binh@example.vn"],
}
WRITERS = ("grant", "withdraw")
Row = tuple[Any, ...]


def rows(session: Session) -> list[Row]:
    """Every column of every row as the database holds it (Core, past the ORM's identity map)."""
    session.flush()
    table = ConsentEvent.__table__
    return [tuple(row) for row in session.execute(select(table).order_by(table.c.id))]


def public_functions() -> dict[str, Callable[..., Any]]:
    return {
        name: value
        for name, value in vars(ledger).items()
        if inspect.isfunction(value) and value.__module__ == ledger.__name__ and not name.startswith("_")
    }


def call_by_names(function: Callable[..., Any], pool: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if name in pool:
            kwargs[name] = pool[name]
        elif parameter.default is inspect.Parameter.empty:
            pytest.fail(f"ledger.{function.__name__}: add a value for parameter {name!r} to this test's pool")
    return function(**kwargs)


def step(session: Session, notices: Path, rng: random.Random, at: datetime) -> str:
    """One random call; returns the function's name."""
    channel = rng.choice(list(ADDRESSES))
    address = rng.choice(ADDRESSES[channel])
    purpose = rng.choice(ledger.PURPOSES)
    name = rng.choice(sorted(public_functions()))
    if name == "grant":
        ledger.grant(session, channel=channel, address=address, purpose=purpose, source="web_form",
                     notice_version="v1", notices_dir=notices, recorded_by="web", at=at)  # fmt: skip
    elif name == "withdraw":
        ledger.withdraw(session, channel=channel, address=address, purpose=purpose, source="staff",
                        recorded_by="lan", reason="hỏi tại quầy", at=at)  # fmt: skip
    else:
        pool = {
            "session": session,
            "channel": channel,
            "address": address,
            "addresses": list(ADDRESSES[channel]),
            "by_key": keys_of(channel, ADDRESSES[channel]),
            "purpose": purpose,
            "purposes": list(ledger.PURPOSES),
            "notices_dir": notices,
            "version": "v1",
            "at": at,
        }
        call_by_names(public_functions()[name], pool)
    return name


@pytest.mark.parametrize("seed", range(6))
def test_no_sequence_of_public_calls_changes_an_earlier_row(
    session: Session, notices: Path, seed: int
) -> None:
    rng = random.Random(seed)
    called: set[str] = set()
    for number in range(60):
        # Times go back as well as forward: an event recorded late must not rewrite the ones after it.
        at = T0 + timedelta(minutes=rng.randint(-300, 300))
        before = rows(session)
        name = step(session, notices, rng, at)
        called.add(name)
        after = rows(session)
        assert after[: len(before)] == before, (seed, number, name)
        assert len(after) == len(before) + (1 if name in WRITERS else 0), (seed, number, name)
        if rng.random() < 0.3:
            session.commit()
    assert called == set(public_functions())  # every public function had its turn


def test_a_refused_event_adds_nothing_and_changes_nothing(session: Session, notices: Path) -> None:
    ledger.grant(session, channel="sms", address="+84905123456", purpose="advertising", source="web_form",
                 notice_version="v1", notices_dir=notices, recorded_by="web", at=T0)  # fmt: skip
    before = rows(session)
    with pytest.raises(ConsentError, match="does not exist"):
        ledger.grant(session, channel="sms", address="+84905123456", purpose="advertising", source="staff",
                     notice_version="v9", notices_dir=notices, recorded_by="lan", reason="x", at=T0)  # fmt: skip
    assert rows(session) == before
