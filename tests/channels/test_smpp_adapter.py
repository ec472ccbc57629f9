"""SmppAdapter against the real sandbox SMSC (smpp34) on 127.0.0.1: windows, parts, receipts, inbound."""

from __future__ import annotations

import sys
import threading
import unicodedata
from typing import Any

import pytest

from channels.base import Adapter, Channel, EventType, SendOutcome
from channels.sms.receipts import ids_match, read_pdu
from channels.sms.smpp import SEND_WINDOWS_PER_CALL, SmppAdapter
from tests.channels.smpp_sending import VIETNAMESE, Inbox, message, send_all
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc


def test_adapter_satisfies_the_protocol() -> None:
    adapter = SmppAdapter(
        host="127.0.0.1", port=1, system_id="x", password="y", source_addr="Z", window=8, binds=2
    )
    assert isinstance(adapter, Adapter)
    assert adapter.channel is Channel.SMS
    assert adapter.capabilities.window == 8 * SEND_WINDOWS_PER_CALL  # several windows' worth per call
    many_binds = SmppAdapter(
        host="127.0.0.1", port=1, system_id="x", password="y", source_addr="Z", window=8, binds=6
    )
    assert many_binds.capabilities.window == 8 * 6  # a window's worth per bind at least
    assert adapter.capabilities.receipts
    assert SmppAdapter.capabilities.window == 64  # the class default is untouched


@pytest.mark.parametrize("binds", [1, 2])
def test_300_messages_in_windows_all_arrive(inbox: Inbox, binds: int) -> None:
    bodies = [f"Tin {n}: " + "mưa lớn, " * (n % 25) for n in range(300)]
    messages = [message(n, bodies[n]) for n in range(300)]
    with (
        running_smsc(SmscBehaviour(receipts=False)) as smsc,
        adapter_for(smsc, window=16, on_inbound=inbox) as adapter,
    ):
        results = send_all(adapter, messages)

        assert [r.message_id for r in results] == list(range(300))
        assert all(r.outcome is SendOutcome.SENT for r in results), [str(r.error) for r in results if r.error]
        reassembled = smsc.reassembled()
        assert len(reassembled) == 300
        assert all(m.complete for m in reassembled)
        by_destination = {m.destination: m for m in reassembled}
        for msg, result in zip(messages, results, strict=True):
            got = by_destination[msg.address.lstrip("+")]
            assert got.text == unicodedata.normalize("NFC", msg.body)
            assert result.provider_ids == tuple(i.lower() for i in got.message_ids)
            assert got.source == "DANANG"
        assert len(smsc.accepted) == sum(len(r.provider_ids) for r in results)
        assert adapter.stats()["outstanding"] == 0


def test_overlapping_send_calls_share_the_window_and_keep_their_results(inbox: Inbox) -> None:
    """The engine runs ``overlap`` send() calls at once: together they never exceed the bind's window, and
    each call gets its own messages' results."""
    calls = [
        [message(c * 1000 + n, f"Tin {c}-{n}: " + "mưa lớn, " * (n % 20)) for n in range(120)]
        for c in range(2)
    ]
    with (
        running_smsc(SmscBehaviour(receipts=False)) as smsc,
        adapter_for(smsc, window=8, on_inbound=inbox) as adapter,
    ):
        assert adapter.capabilities.overlap == 2
        results: dict[int, list[Any]] = {}
        threads = [
            threading.Thread(target=lambda c=c: results.__setitem__(c, adapter.send(calls[c])))
            for c in range(2)
        ]
        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # thread switches everywhere, so an unguarded window check would show
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        finally:
            sys.setswitchinterval(old)

        for c in range(2):
            assert [r.message_id for r in results[c]] == [m.message_id for m in calls[c]]
            assert all(r.outcome is SendOutcome.SENT for r in results[c])
        by_destination = {m.destination: m for m in smsc.reassembled()}
        for c in range(2):
            for msg, result in zip(calls[c], results[c], strict=True):
                got = by_destination[msg.address.lstrip("+")]
                assert got.complete
                assert got.text == unicodedata.normalize("NFC", msg.body)
                assert result.provider_ids == tuple(i.lower() for i in got.message_ids)
        stats = adapter.stats()
        assert stats["outstanding"] == 0
        assert 1 <= stats["peak_outstanding"] <= 8


def test_long_vietnamese_ucs2_arrives_as_numbered_parts() -> None:
    with running_smsc(SmscBehaviour(receipts=False)) as smsc, adapter_for(smsc) as adapter:
        first, second = adapter.send(
            [message(1, VIETNAMESE, "+84905123456"), message(2, VIETNAMESE, "+84905123456")]
        )

        assert first.outcome is SendOutcome.SENT
        assert second.outcome is SendOutcome.SENT
        assert len(first.provider_ids) == 4
        messages = smsc.reassembled()
        assert len(messages) == 2
        # The SMSC may record the two messages' parts interleaved: pair them up by the ids it issued.
        by_ids = {tuple(i.lower() for i in got.message_ids): got for got in messages}
        assert set(by_ids) == {first.provider_ids, second.provider_ids}
        for got in messages:
            assert got.complete
            assert got.text == unicodedata.normalize("NFC", VIETNAMESE)
            assert [p.udh_number for p in got.parts] == [1, 2, 3, 4]
            assert {(p.data_coding, p.esm_class, p.udh_total) for p in got.parts} == {(8, 0x40, 4)}
            assert all(p.registered_delivery == 1 for p in got.parts)
        # Two long messages to one handset carry different concatenation references (a counter, not random).
        assert messages[0].reference != messages[1].reference


@pytest.mark.parametrize("style", ["text", "tlv", "both"])
@pytest.mark.parametrize(
    ("id_style", "id_form"),
    [("hex", "as_issued"), ("decimal", "as_issued"), ("hex", "decimal"), ("decimal", "hex")],
)
def test_receipts_reach_on_inbound(inbox: Inbox, style: str, id_style: str, id_form: str) -> None:
    behaviour = SmscBehaviour(receipt_style=style, message_id_style=id_style, receipt_id_form=id_form)  # type: ignore[arg-type]
    with running_smsc(behaviour) as smsc, adapter_for(smsc, on_inbound=inbox) as adapter:
        results = adapter.send([message(1), message(2, VIETNAMESE)])
        part_ids = [pid for r in results for pid in r.provider_ids]
        assert len(part_ids) == 5
        assert inbox.wait_for(5)

        events = [adapter.parse_events(record)[0] for record in inbox.records]
        assert {e.type for e in events} == {EventType.DELIVERED}
        for part_id in part_ids:
            assert sum(ids_match(part_id, e.provider_id) for e in events) == 1, (part_id, events)
        # Kept as the PDU's own octets (the gateway does not parse receipts); read, each is a receipt.
        assert all("esm_class" not in r and r["pdu_hex"] for r in inbox.records)
        assert all(read_pdu(r)["esm_class"] & 0x04 for r in inbox.records)


def test_duplicate_and_unknown_id_receipts_do_not_break_the_reader(inbox: Inbox) -> None:
    behaviour = SmscBehaviour(duplicate_receipts=True, unknown_id_receipts=True)
    with running_smsc(behaviour) as smsc, adapter_for(smsc, on_inbound=inbox) as adapter:
        (first,) = adapter.send([message(1)])
        assert inbox.wait_for(3)  # the receipt twice, then one for an id we never got
        (second,) = adapter.send([message(2)])
        assert second.outcome is SendOutcome.SENT
        assert inbox.wait_for(6)
        ids = [adapter.parse_events(r)[0].provider_id for r in inbox.records]
        assert ids.count(first.provider_ids[0]) == 2
        assert ids.count(second.provider_ids[0]) == 2
        assert smsc.wait_until(
            lambda s: len(s.delivers) == 6 and all(d.command_status == 0 for d in s.delivers)
        )


def test_deliver_sm_is_answered_only_after_on_inbound_returned() -> None:
    entered = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    def on_inbound(record: dict[str, Any]) -> None:
        seen.append(read_pdu(record)["receipted_message_id"])
        entered.set()
        assert release.wait(10)

    with running_smsc() as smsc, adapter_for(smsc, on_inbound=on_inbound) as adapter:
        (result,) = adapter.send([message(1)])
        assert entered.wait(10)
        # While the engine is still storing the record, the SMSC must not have its answer.
        assert not smsc.wait_until(lambda s: len(s.delivers) > 0, timeout=0.3)
        release.set()
        assert smsc.wait_until(lambda s: len(s.delivers) == 1)
        assert smsc.delivers[0].command_status == 0
        assert ids_match(seen[0], result.provider_ids[0])


def test_on_inbound_raising_answers_0x64_and_the_reader_continues(inbox: Inbox) -> None:
    calls: list[dict[str, Any]] = []

    def flaky(record: dict[str, Any]) -> None:
        calls.append(record)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        inbox(record)

    with (
        running_smsc(SmscBehaviour(redeliver_attempts=2)) as smsc,
        adapter_for(smsc, on_inbound=flaky) as adapter,
    ):
        adapter.send([message(1)])
        assert inbox.wait_for(1)  # the SMSC redelivered after our 0x64 and the second try was stored
        assert smsc.wait_until(lambda s: [d.command_status for d in s.delivers] == [0x64, 0])
        (later,) = adapter.send([message(2)])
        assert later.outcome is SendOutcome.SENT
        assert inbox.wait_for(2)


def test_mobile_originated_message(inbox: Inbox) -> None:
    with running_smsc() as smsc, adapter_for(smsc, on_inbound=inbox) as adapter:
        assert smsc.wait_until(lambda s: s.bound_sessions == 1)
        smsc.inject_mo("84905123456", "8088", "Đường Lê Duẩn bị ngập")
        assert inbox.wait_for(1)
        (event,) = adapter.parse_events(inbox.records[0])
        assert event.type is EventType.INBOUND
        assert (event.sender, event.recipient, event.text) == ("84905123456", "8088", "Đường Lê Duẩn bị ngập")
