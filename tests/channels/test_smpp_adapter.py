"""SmppAdapter against the real sandbox SMSC (smpp34) on 127.0.0.1: windows, parts, receipts, errors, links."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest

from channels.base import Adapter, Channel, EventType, OutboundMessage, SendOutcome
from channels.errors import ConnectionLost, OutcomeUnknown, PermanentError, RecipientRejected, Throttled
from channels.sms.receipts import ids_match, read_pdu
from channels.sms.smpp import SEND_WINDOWS_PER_CALL, SmppAdapter
from tests.conftest import free_port
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc

VIETNAMESE = (
    "Thông báo của UBND thành phố Đà Nẵng: từ ngày 15/01, người dân các quận Hải Châu, Thanh Khê, Sơn Trà "
    "vui lòng không đổ rác ra đường trong thời gian mưa lớn. Mọi thắc mắc xin liên hệ đường dây nóng 1022. "
    "Trân trọng cảm ơn quý vị đã hợp tác! 🌧️"
)


class Inbox:
    """An on_inbound that keeps every record and lets a test wait for a count."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, record: dict[str, Any]) -> None:
        with self.cond:
            self.records.append(record)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.records) >= count, timeout)


def message(n: int, body: str = "Xin chào", address: str | None = None) -> OutboundMessage:
    return OutboundMessage(message_id=n, address=address or f"+8490{n:07d}", body=body)


def send_all(adapter: SmppAdapter, messages: list[OutboundMessage]) -> list[Any]:
    """Hand the adapter windows of capabilities.window messages, as the engine does."""
    window = adapter.capabilities.window
    results: list[Any] = []
    for start in range(0, len(messages), window):
        results.extend(adapter.send(messages[start : start + window]))
    return results


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def test_adapter_satisfies_the_protocol() -> None:
    adapter = SmppAdapter(
        host="127.0.0.1", port=1, system_id="x", password="y", source_addr="Z", window=8, binds=2
    )
    assert isinstance(adapter, Adapter)
    assert adapter.channel is Channel.SMS
    assert adapter.capabilities.window == 8 * 2 * SEND_WINDOWS_PER_CALL
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


def test_throttling_every_fifth_pdu_loses_nothing() -> None:
    messages = [message(n, "Chào " * (1 + n % 40)) for n in range(120)]
    with running_smsc(SmscBehaviour(throttle_every=5, receipts=False)) as smsc, adapter_for(smsc) as adapter:
        results = send_all(adapter, messages)

        assert all(r.outcome is SendOutcome.SENT for r in results), [str(r.error) for r in results if r.error]
        throttled = [r for r in smsc.submits if r.status == 0x58]
        assert throttled, "the SMSC should have throttled some PDUs"
        reassembled = smsc.reassembled()
        assert len(reassembled) == 120
        assert all(m.complete for m in reassembled)
        assert len(smsc.accepted) == sum(len(r.provider_ids) for r in results)


def test_throttled_beyond_the_retries_is_reported_throttled() -> None:
    behaviour = SmscBehaviour(throttle_every=1, throttle_status=0x14, receipts=False)
    with (
        running_smsc(behaviour) as smsc,
        adapter_for(smsc, throttle_retries=2, throttle_backoff=0.05) as adapter,
    ):
        (result,) = adapter.send([message(1)])
        assert isinstance(result.error, Throttled)
        assert result.error.code == "0x00000014"
        assert result.error.retry_after
        assert len(smsc.submits) == 3  # the first try and two retries


def test_a_part_throttled_for_good_is_resent_alone_under_the_same_reference() -> None:
    """One part of four refused (throttled) past the retries: the result names the parts accepted and their
    reference; handed back, only the refused part goes out again, under that reference: the message is whole
    and no part is billed twice."""
    behaviour = SmscBehaviour(throttle_every=3, receipts=False)  # the 3rd submit_sm is refused
    with running_smsc(behaviour) as smsc, adapter_for(smsc, throttle_retries=0) as adapter:
        (first,) = adapter.send([message(1, VIETNAMESE, "+84905123456")])

        assert isinstance(first.error, Throttled)
        assert len(first.accepted_parts) == 3
        assert first.sms_reference is not None
        (refused,) = {1, 2, 3, 4} - set(first.accepted_parts)
        retry = OutboundMessage(
            message_id=1,
            address="+84905123456",
            body=VIETNAMESE,
            sms_reference=first.sms_reference,
            accepted_parts=first.accepted_parts,
        )
        (second,) = adapter.send([retry])  # the 5th submit_sm: accepted

        assert second.outcome is SendOutcome.SENT, second.error
        assert sorted(r.udh_number or 0 for r in smsc.submits) == sorted([1, 2, 3, 4, refused])
        assert {r.udh_reference for r in smsc.submits} == {first.sms_reference}
        (whole,) = smsc.reassembled()
        assert whole.complete
        assert whole.text == unicodedata.normalize("NFC", VIETNAMESE)
        assert len(smsc.accepted) == 4
        assert {n: second.provider_ids[n - 1] for n in first.accepted_parts} == first.accepted_parts


def test_rejected_destination_fails_only_that_message() -> None:
    behaviour = SmscBehaviour(reject={"84911111111": 0x0B}, receipts=False)
    with running_smsc(behaviour) as smsc, adapter_for(smsc) as adapter:
        results = adapter.send(
            [
                message(1),
                message(2),
                message(3, address="+84911111111"),
                message(4, VIETNAMESE, "+84911111111"),
            ]
        )

        assert [r.outcome for r in results] == [
            SendOutcome.SENT,
            SendOutcome.SENT,
            SendOutcome.FAILED,
            SendOutcome.FAILED,
        ]
        for failed in results[2:]:
            assert isinstance(failed.error, RecipientRejected)
            assert failed.error.code == "0x0000000B"
        assert "part 1/" in str(results[3].error.detail)  # type: ignore[union-attr]
        assert len(smsc.accepted) == 2


def test_an_address_too_long_for_submit_sm_fails_only_that_message() -> None:
    """smpplib would cut a 21-digit destination to 20 and reach someone else; the adapter refuses it."""
    with running_smsc(SmscBehaviour(receipts=False)) as smsc, adapter_for(smsc) as adapter:
        results = adapter.send([message(1), message(2, address="+" + "8" * 21), message(3)])

        assert [r.outcome for r in results] == [SendOutcome.SENT, SendOutcome.FAILED, SendOutcome.SENT]
        assert isinstance(results[1].error, PermanentError)
        assert "destination_addr" in str(results[1].error.detail)
        assert sorted(m.destination for m in smsc.reassembled()) == ["84900000001", "84900000003"]


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


def test_connection_drop_reconnects_and_sending_resumes() -> None:
    port = free_port()
    with running_smsc(SmscBehaviour(receipts=False), port=port) as smsc:
        adapter = adapter_for(smsc, pdu_timeout=0.5)
        adapter.open()
    try:
        # The SMSC is gone: nothing can be written, so the engine may safely resend.
        (down,) = adapter.send([message(1)])
        assert isinstance(down.error, ConnectionLost)
        with running_smsc(SmscBehaviour(receipts=False), port=port) as again:
            assert adapter.wait_bound(10)
            (up,) = adapter.send([message(2)])
            assert up.outcome is SendOutcome.SENT
            assert [r.destination for r in again.accepted] == ["84900000002"]
            # A cut in the middle of the session (no stop): the reader notices and binds again.
            again.drop_connections()
            assert again.wait_until(lambda s: len(s.connections) == 2 and s.bound_sessions == 1)
            assert adapter.wait_bound(10)
            (after,) = adapter.send([message(3)])
            assert after.outcome is SendOutcome.SENT
            assert adapter.stats()["connects"] == 3
    finally:
        adapter.close()


def test_enquire_link_keeps_an_idle_bind_alive() -> None:
    behaviour = SmscBehaviour(idle_timeout=0.6, receipts=False)
    with running_smsc(behaviour) as smsc, adapter_for(smsc, enquire_link_interval=0.15) as adapter:
        assert smsc.wait_until(lambda s: s.connections and s.connections[0].enquire_links >= 8, timeout=10)
        (connection,) = smsc.connections
        assert connection.closed_reason is None
        stats = adapter.stats()
        assert stats["connects"] == 1
        assert stats["enquire_links_answered"] >= 7
        assert adapter.send([message(1)])[0].outcome is SendOutcome.SENT


def test_without_enquire_link_the_idle_smsc_cuts_and_the_adapter_rebinds() -> None:
    behaviour = SmscBehaviour(idle_timeout=0.5, receipts=False)
    with running_smsc(behaviour) as smsc, adapter_for(smsc, enquire_link_interval=30.0) as adapter:
        assert smsc.wait_until(
            lambda s: any(c.closed_reason == "idle timeout" for c in s.connections), timeout=10
        )
        assert smsc.wait_until(lambda s: len(s.connections) >= 2 and s.bound_sessions == 1, timeout=10)
        assert adapter.wait_bound(10)
        assert adapter.send([message(1)])[0].outcome is SendOutcome.SENT


# ---------------------------------------------------------------------------------------------------------
# A deliberately broken SMSC (plain socket): binds, then never answers submit_sm, or hangs up on it.


class MuteSmsc:
    """Answers bind_transceiver and enquire_link (SMPP v3.4 §4.1.6, §4.11.2), then ignores or cuts submit_sm."""

    def __init__(self, *, on_submit: str) -> None:
        self.on_submit = on_submit  # "ignore" or "hang up"
        self.host = "127.0.0.1"
        self.listener = socket.create_server((self.host, 0))
        self.port = self.listener.getsockname()[1]
        self.submits = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            while True:
                header = connection.recv(16, socket.MSG_WAITALL)
                if len(header) < 16:
                    return
                length, command_id, _status, sequence = struct.unpack(">LLLL", header)
                if length > 16:
                    connection.recv(length - 16, socket.MSG_WAITALL)
                if command_id == 0x00000009:  # bind_transceiver -> bind_transceiver_resp with system_id
                    body = b"MUTE\x00"
                    connection.sendall(struct.pack(">LLLL", 16 + len(body), 0x80000009, 0, sequence) + body)
                elif command_id == 0x00000015:  # enquire_link
                    connection.sendall(struct.pack(">LLLL", 16, 0x80000015, 0, sequence))
                elif command_id == 0x00000004:  # submit_sm
                    self.submits += 1
                    if self.on_submit == "hang up":
                        return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def mute() -> Iterator[Any]:
    servers: list[MuteSmsc] = []

    def make(on_submit: str) -> MuteSmsc:
        servers.append(MuteSmsc(on_submit=on_submit))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("on_submit", ["ignore", "hang up"])
def test_no_answer_after_the_write_is_outcome_unknown(mute: Any, on_submit: str) -> None:
    server = mute(on_submit)
    adapter = SmppAdapter(
        host="127.0.0.1",
        port=server.port,
        system_id="x",
        password="y",
        source_addr="DANANG",
        pdu_timeout=0.5,
        reconnect_initial=5.0,
    )
    with adapter:
        (result,) = adapter.send([message(1)])
    assert isinstance(result.error, OutcomeUnknown)
    assert server.submits == 1


def test_open_against_nothing_raises_connection_lost() -> None:
    adapter = SmppAdapter(host="127.0.0.1", port=free_port(), system_id="x", password="y", source_addr="Z")
    with pytest.raises(ConnectionLost):
        adapter.open()
    (result,) = adapter.send([message(1)])
    assert isinstance(result.error, ConnectionLost)


def test_on_handing_is_told_of_each_message_before_its_first_part_is_written() -> None:
    """The engine records which messages may be at the SMSC before their bytes go (issue 9, item 1)."""
    told: list[int] = []
    early: list[int] = []  # told after the SMSC already had a part of it
    messages = [message(n, "Tin dài: " + "mưa lớn, " * 12 * (n % 2)) for n in range(150)]  # 1 or 2 parts
    with running_smsc(SmscBehaviour(receipts=False)) as smsc:

        def on_handing(ids: Any) -> None:
            at_smsc = {record.destination for record in smsc.submits}
            early.extend(n for n in ids if messages[n].address.lstrip("+") in at_smsc)
            told.extend(ids)

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

    def on_handing(ids: Any) -> None:
        nonlocal most_unrecorded
        with lock:
            handed.update(ids)
            most_unrecorded = max(most_unrecorded, len(handed - set(recorded)))

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
