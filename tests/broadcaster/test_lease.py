"""Leases (broadcaster/lease.py) on SQLite and PostgreSQL: one holder at a time, requests that come while it is
held turn into one more pass of the holder, an expired or abandoned lease can be taken again.

"Concurrent" requests are made from inside the work itself, so the interleaving is exact and nothing sleeps.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcaster.clock import FrozenClock
from broadcaster.db.engine import make_engine, session_factory
from broadcaster.db.migrate import upgrade
from broadcaster.db.models import Lease
from broadcaster.lease import HeldLease, acquire, process_alive, release, run_exclusively, take
from tests.broadcaster.conftest import START

TTL = timedelta(minutes=2)
NAME = "apply-inbound:sms_main"
GATEWAY = "gateway:sms_main"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def sessions(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/lease.db"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def lease_row(sessions: sessionmaker[Session]) -> Lease:
    with sessions() as session:
        row = session.scalar(select(Lease).where(Lease.name == NAME))
    assert row is not None
    return row


def test_one_holder_at_a_time_and_a_request_meanwhile_keeps_the_holder_going(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    assert acquire(sessions, NAME, "a", clock=clock, ttl=TTL)
    assert not acquire(sessions, NAME, "b", clock=clock, ttl=TTL)  # held: b's request becomes a note
    assert lease_row(sessions).again

    assert not release(sessions, NAME, "a", clock=clock, ttl=TTL)  # the note: a goes on, still holding
    assert lease_row(sessions).holder == "a"
    assert not lease_row(sessions).again
    assert not acquire(sessions, NAME, "b", clock=clock, ttl=TTL)

    assert not release(sessions, NAME, "a", clock=clock, ttl=TTL)  # b asked again
    assert release(sessions, NAME, "a", clock=clock, ttl=TTL)
    assert lease_row(sessions).holder is None
    assert acquire(sessions, NAME, "b", clock=clock, ttl=TTL)


def test_an_expired_lease_is_taken_and_its_old_holder_leaves_it_alone(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    assert acquire(sessions, NAME, "a", clock=clock, ttl=TTL)
    clock.advance(TTL - timedelta(seconds=1))
    assert not acquire(sessions, NAME, "b", clock=clock, ttl=TTL)
    clock.advance(timedelta(seconds=2))
    assert acquire(sessions, NAME, "b", clock=clock, ttl=TTL)  # a died (or ran too long)

    assert release(sessions, NAME, "a", clock=clock, ttl=TTL)  # a is done with it...
    assert lease_row(sessions).holder == "b"  # ...and b keeps it


def test_run_exclusively_makes_one_more_pass_per_request_that_came_while_it_ran(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    passes: list[int] = []
    competing: list[object] = []

    def work() -> int:
        passes.append(len(passes) + 1)
        if len(passes) == 1:  # two requests during the first pass: both find it held, one more pass
            competing.append(run_exclusively(sessions, NAME, lambda: -1, clock=clock))
            competing.append(run_exclusively(sessions, NAME, lambda: -1, clock=clock))
        return passes[-1]

    assert run_exclusively(sessions, NAME, work, clock=clock) == [1, 2]
    assert competing == [None, None]  # neither ran its own work
    assert lease_row(sessions).holder is None
    assert run_exclusively(sessions, NAME, lambda: 7, clock=clock) == [7]


def test_a_failed_pass_frees_the_lease_at_once(sessions: sessionmaker[Session], clock: FrozenClock) -> None:
    def work() -> int:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        run_exclusively(sessions, NAME, work, clock=clock)

    assert lease_row(sessions).holder is None  # no waiting for the TTL
    assert run_exclusively(sessions, NAME, lambda: 1, clock=clock) == [1]


def test_leases_of_different_names_do_not_block_each_other(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    assert acquire(sessions, NAME, "a", clock=clock, ttl=TTL)
    assert acquire(sessions, "apply-inbound:sms_backup", "b", clock=clock, ttl=TTL)


def test_a_lease_held_for_a_process_life_refuses_others_until_it_lapses(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    mine = f"{socket.gethostname()}:{os.getpid()}:a"
    other = "elsewhere:1234:b"  # another host: its process cannot be looked at, only its lease's expiry
    assert take(sessions, GATEWAY, mine, clock=clock, ttl=TTL) is None
    assert take(sessions, GATEWAY, other, clock=clock, ttl=TTL) == mine
    assert take(sessions, GATEWAY, mine, clock=clock, ttl=TTL) is None  # renewed by its holder
    clock.advance(TTL + timedelta(seconds=1))
    assert take(sessions, GATEWAY, other, clock=clock, ttl=TTL) is None  # lapsed: taken over
    assert take(sessions, GATEWAY, mine, clock=clock, ttl=TTL) == other


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not process_alive(dead.pid)
    assert process_alive(os.getpid())
    gone = f"{socket.gethostname()}:{dead.pid}:a"
    assert take(sessions, GATEWAY, gone, clock=clock, ttl=TTL) is None

    assert take(sessions, GATEWAY, f"{socket.gethostname()}:{os.getpid()}:b", clock=clock, ttl=TTL) is None


def test_a_pass_lease_of_a_killed_applier_on_this_host_is_taken_by_the_next_request(
    sessions: sessionmaker[Session], clock: FrozenClock
) -> None:
    """A receipt applier killed mid-pass: the next request takes its lease at once, not after the ttl."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert acquire(sessions, NAME, f"{socket.gethostname()}:{dead.pid}:a", clock=clock, ttl=TTL)
    elsewhere = f"another-host.invalid:{os.getpid()}:b"
    me = f"{socket.gethostname()}:{os.getpid()}:c"

    assert acquire(sessions, NAME, me, clock=clock, ttl=TTL)
    assert lease_row(sessions).holder == me
    # A holder on another host cannot be seen: its lease waits for the ttl as before.
    assert release(sessions, NAME, me, clock=clock, ttl=TTL)
    assert acquire(sessions, NAME, elsewhere, clock=clock, ttl=TTL)
    assert not acquire(sessions, NAME, me, clock=clock, ttl=TTL)
    assert lease_row(sessions).again


def test_a_held_lease_is_given_back_on_release(sessions: sessionmaker[Session], clock: FrozenClock) -> None:
    lost: list[str] = []
    first = HeldLease(sessions, GATEWAY, clock=clock, ttl=TTL, on_lost=lost.append)
    second = HeldLease(sessions, GATEWAY, clock=clock, ttl=TTL, on_lost=lost.append)
    assert first.try_take() is None
    assert first.held
    assert second.try_take() == first.holder
    assert not second.held

    first.release()

    assert second.try_take() is None
    assert second.held
    second.release()
    assert lost == []
