"""The SMPP adapter reads its PDU deadlines and throttle back-offs from the clock it is given: with a clock
that moves only when told, a PDU timeout or a back-off is reached by moving the clock, not by waiting."""

from __future__ import annotations

import threading
from collections.abc import Callable

from channels.base import SendOutcome, SendResult
from channels.clock import SYSTEM_CLOCK, Clock
from channels.errors import OutcomeUnknown
from channels.sms.smpp import SmppAdapter
from tests.channels.smpp_sending import message
from tests.peers.mute_smsc import MuteSmsc
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc

FAR = 3600.0  # longer than any test runs: only a moved clock can get there


class ManualClock:
    """Monotonic seconds that move only when the test (or a sleep) says so."""

    def __init__(self) -> None:
        self.seconds = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.seconds += seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def send_in_background(adapter: SmppAdapter) -> tuple[threading.Thread, list[SendResult]]:
    results: list[SendResult] = []
    thread = threading.Thread(target=lambda: results.extend(adapter.send([message(1)])), daemon=True)
    thread.start()
    return thread, results


def wait_real(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Wait (in real time) for something a server thread does."""
    done = threading.Event()
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while not condition():
        if SYSTEM_CLOCK.monotonic() > deadline:
            return False
        done.wait(0.01)
    return True


def test_the_system_clock_satisfies_the_protocol() -> None:
    clock: Clock = SYSTEM_CLOCK
    assert clock.monotonic() <= clock.monotonic()
    manual: Clock = ManualClock()
    assert manual.monotonic() == 1000.0


def test_an_unanswered_pdu_becomes_unknown_when_the_clock_passes_its_deadline() -> None:
    clock = ManualClock()
    server = MuteSmsc(on_submit="ignore")
    adapter = SmppAdapter(
        host=server.host,
        port=server.port,
        system_id="x",
        password="y",
        source_addr="DANANG",
        pdu_timeout=FAR,
        reconnect_initial=5.0,
        clock=clock,
    )
    try:
        with adapter:
            thread, results = send_in_background(adapter)
            assert wait_real(lambda: server.submits == 1)
            thread.join(0.3)
            assert thread.is_alive(), "the PDU timed out before the clock reached its deadline"

            clock.advance(FAR + 1)
            thread.join(10)
            assert not thread.is_alive()
    finally:
        server.close()
    (result,) = results
    assert isinstance(result.error, OutcomeUnknown)


def test_a_throttled_part_is_retried_when_the_clock_reaches_its_back_off() -> None:
    clock = ManualClock()
    behaviour = SmscBehaviour(throttle_every=2, receipts=False)  # the 2nd submit_sm is throttled
    with (
        running_smsc(behaviour) as smsc,
        adapter_for(
            smsc, throttle_backoff=FAR, throttle_backoff_max=FAR, pdu_timeout=FAR, clock=clock
        ) as adapter,
    ):
        assert adapter.send([message(0)])[0].outcome is SendOutcome.SENT  # the 1st goes through
        thread, results = send_in_background(adapter)
        assert smsc.wait_until(lambda s: any(r.status == 0x58 for r in s.submits))
        thread.join(0.3)
        assert thread.is_alive(), "the retry did not wait for the back-off"
        assert len(smsc.submits) == 2, "the retry did not wait for the back-off"

        clock.advance(FAR + 1)
        thread.join(10)
        assert not thread.is_alive()
        (result,) = results
        assert result.outcome is SendOutcome.SENT
        assert [r.status for r in smsc.submits] == [0, 0x58, 0]
