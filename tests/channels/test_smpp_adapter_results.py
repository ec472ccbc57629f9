"""SmppAdapter telling the engine in time: before a message is written, and each result as it comes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from channels.base import SendOutcome
from channels.errors import ConnectionLost, Withheld
from tests.channels.smpp_sending import VIETNAMESE, message, send_all
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc


def test_on_handing_is_told_of_each_message_before_its_first_part_is_written() -> None:
    """The engine records which messages may be at the SMSC before their bytes go (issue 9, item 1)."""
    told: list[int] = []
    early: list[int] = []  # told after the SMSC already had a part of it
    messages = [message(n, "Tin dài: " + "mưa lớn, " * 12 * (n % 2)) for n in range(150)]  # 1 or 2 parts
    with running_smsc(SmscBehaviour(receipts=False)) as smsc:

        def on_handing(ids: Any) -> Any:
            at_smsc = {record.destination for record in smsc.submits}
            early.extend(n for n in ids if messages[n].address.lstrip("+") in at_smsc)
            told.extend(ids)
            return ids

        with adapter_for(smsc, window=16, on_handing=on_handing) as adapter:
            results = send_all(adapter, messages)

    assert all(r.outcome is SendOutcome.SENT for r in results)
    assert sorted(told) == list(range(150))  # each message once, however many parts
    assert early == []


def test_when_on_handing_fails_nothing_is_written() -> None:
    def on_handing(ids: Any) -> None:
        raise RuntimeError("database is locked")

    with (
        running_smsc(SmscBehaviour(receipts=False)) as smsc,
        adapter_for(smsc, window=16, on_handing=on_handing) as adapter,
    ):
        results = adapter.send([message(n) for n in range(5)])
        assert smsc.submits == []
    assert all(isinstance(r.error, ConnectionLost) for r in results)  # safe to send again later


def test_a_withheld_long_message_has_none_of_its_parts_written() -> None:
    long_text = "Tin dài: " + "mưa lớn, " * 12  # 2 parts
    messages = [message(n, long_text) for n in range(6)]

    def on_handing(ids: Any) -> list[int]:
        return [n for n in ids if n % 2]  # the even ones were stopped since their claim

    with (
        running_smsc(SmscBehaviour(receipts=False)) as smsc,
        adapter_for(smsc, window=3, on_handing=on_handing) as adapter,
    ):
        results = adapter.send(messages)
        destinations = [record.destination for record in smsc.submits]
    assert [isinstance(r.error, Withheld) for r in results] == [True, False] * 3
    assert sorted(destinations) == sorted(2 * [m.address.lstrip("+") for m in messages[1::2]])


def test_results_are_reported_as_they_come_and_unrecorded_messages_never_exceed_the_window() -> None:
    """With ``on_settled`` each message's result is reported once, as soon as its last part is answered, and
    the window slots of answered parts stay taken until it is recorded: however slow the recording, the
    messages written whose outcome is not recorded never exceed the PDU window (issue 9, item 5)."""
    window = 8
    calls = [
        [message(c * 1000 + n, f"Tin {c}-{n}: " + "mưa lớn, " * 12 * (n % 2)) for n in range(60)]  # 1-2 parts
        for c in range(2)
    ]
    lock = threading.Lock()
    handed: set[int] = set()
    recorded: list[int] = []
    most_unrecorded = 0
    reported_before_return = 0
    returned: dict[int, list[Any]] = {}

    def on_handing(ids: Any) -> Any:
        nonlocal most_unrecorded
        with lock:
            handed.update(ids)
            most_unrecorded = max(most_unrecorded, len(handed - set(recorded)))
        return ids

    def on_settled(results: Any) -> None:
        nonlocal reported_before_return
        threading.Event().wait(0.002)  # a database commit's worth: slots must stay taken meanwhile
        with lock:
            recorded.extend(r.message_id for r in results)
            reported_before_return += sum(len(returned) < 2 for _ in results)

    with (
        running_smsc(SmscBehaviour(receipts=False)) as smsc,
        adapter_for(smsc, window=window, on_handing=on_handing) as adapter,
    ):
        assert adapter.capabilities.settles
        threads = [
            threading.Thread(
                target=lambda c=c: returned.__setitem__(c, adapter.send(calls[c], on_settled=on_settled))
            )
            for c in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert adapter.stats()["outstanding"] == 0

    every = [m.message_id for call in calls for m in call]
    assert sorted(recorded) == sorted(every)  # each once
    assert reported_before_return > len(every) // 2  # as they came, not at the end of the calls
    assert all(r.outcome is SendOutcome.SENT for c in range(2) for r in returned[c])
    assert 1 <= most_unrecorded <= window


@pytest.mark.parametrize("paced", [False, True])
@pytest.mark.parametrize("window", [1, 3])
def test_with_early_results_a_tiny_window_under_throttling_never_stalls(window: int, paced: bool) -> None:
    """Multi-part messages, every third PDU throttled, results reported early: a message's next part and a
    throttled part's retry take over the slot their message holds, so even a window of one never waits
    for itself (nor for a rate-limit token it never asks for)."""
    asked: list[int] = []

    def pacer(wanted: int) -> int:
        asked.append(wanted)
        return wanted

    messages = [message(n, VIETNAMESE if n % 3 == 0 else "Chào " * (1 + n % 7)) for n in range(30)]
    settled: list[int] = []
    with (
        running_smsc(SmscBehaviour(throttle_every=3, receipts=False)) as smsc,
        adapter_for(
            smsc, window=window, throttle_backoff=0.01, throttle_retries=8, pacer=pacer if paced else None
        ) as adapter,
    ):
        results = adapter.send(messages, on_settled=lambda rs: settled.extend(r.message_id for r in rs))
        assert adapter.stats()["outstanding"] == 0
        assert adapter.stats()["peak_outstanding"] <= window
        reassembled = smsc.reassembled()

    assert all(r.outcome is SendOutcome.SENT for r in results), [str(r.error) for r in results if r.error]
    assert sorted(settled) == list(range(30))
    assert sum(asked) == (len(smsc.submits) if paced else 0)  # one token per submit_sm written
    assert len(reassembled) == 30
    assert all(m.complete for m in reassembled)
