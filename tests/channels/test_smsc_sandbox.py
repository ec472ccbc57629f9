"""The sandbox SMSC, driven by a bare smpplib client: records, JSON lines, receipts, throttling, relay."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import smpplib.client
import smpplib.consts

from channels.sandbox.smsc import server as server_module
from tests.peers.smsc import SmscBehaviour, running_smsc


class BareClient:
    """smpplib used the plain way, one thread: submit, then read until a condition holds."""

    def __init__(self, host: str, port: int) -> None:
        self.client = smpplib.client.Client(host, port, timeout=0.2, allow_unknown_opt_params=True)
        self.delivered: list[Any] = []
        self.responses: list[tuple[int, int, bytes | None]] = []
        self.client.set_message_received_handler(lambda pdu: self.delivered.append(pdu))
        self.client.set_message_sent_handler(
            lambda pdu: self.responses.append((pdu.sequence, pdu.status, pdu.message_id))
        )
        self.client.set_error_pdu_handler(lambda pdu: None)
        self.client.connect()
        self.client.bind_transceiver(system_id="tester", password="pw")

    def submit(self, destination: str, short_message: bytes, **fields: Any) -> int:
        pdu = self.client.send_message(
            source_addr="DANANG",
            source_addr_ton=5,
            destination_addr=destination,
            short_message=short_message,
            registered_delivery=1,
            **fields,
        )
        return int(pdu.sequence)

    def read_until(self, predicate: Any, *, reads: int = 100) -> bool:
        for _ in range(reads):
            if predicate():
                return True
            self.client.read_once()
        return bool(predicate())

    def close(self) -> None:
        self.client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN
        self.client.disconnect()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "sandbox"


@pytest.fixture
def bare() -> Iterator[Any]:
    clients: list[BareClient] = []

    def make(smsc: Any) -> BareClient:
        client = BareClient(smsc.host, smsc.port)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_submit_is_recorded_in_jsonl_and_receipted_with_its_id(folder: Path, bare: Any) -> None:
    with running_smsc(SmscBehaviour(receipt_style="both", message_id_style="hex"), folder=folder) as smsc:
        client = bare(smsc)
        client.submit("84905123456", b"Hello Da Nang")
        assert client.read_until(lambda: client.responses and client.delivered)

        _seq, status, message_id = client.responses[0]
        assert status == 0
        assert message_id
        (record,) = smsc.submits
        assert record.message_id == message_id.decode()
        assert (record.destination, record.source, record.text) == ("84905123456", "DANANG", "Hello Da Nang")
        assert record.system_id == "tester"

        line = json.loads((folder / "sms.jsonl").read_text(encoding="utf-8").splitlines()[0])
        assert line["message_id"] == record.message_id
        assert line["text"] == "Hello Da Nang"
        assert line["status"] == 0
        assert line["data_coding"] == 0
        assert line["udh_total"] is None

        receipt = client.delivered[0]
        assert receipt.esm_class & 0x04
        assert receipt.receipted_message_id == message_id
        assert receipt.message_state == 2
        text = receipt.short_message.decode()
        assert text.startswith(f"id:{record.message_id} sub:001 dlvrd:001 submit date:")
        assert "stat:DELIVRD err:000 text:Hello Da Nang" in text


def test_without_kept_records_it_still_answers_receipts_and_writes_jsonl(folder: Path, bare: Any) -> None:
    with running_smsc(SmscBehaviour(keep_records=False), folder=folder) as smsc:
        client = bare(smsc)
        for n in range(3):
            client.submit(f"8490500000{n}", b"x")
        assert client.read_until(lambda: len(client.responses) == 3 and len(client.delivered) == 3)

        assert [status for _seq, status, _id in client.responses] == [0, 0, 0]
        assert (smsc.submits, smsc.delivers) == ([], [])  # nothing grows with the messages
        assert len((folder / "sms.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def test_every_third_submit_is_throttled(bare: Any) -> None:
    with running_smsc(SmscBehaviour(throttle_every=3, receipts=False)) as smsc:
        client = bare(smsc)
        for n in range(9):
            client.submit(f"8490500000{n}", b"x")
        assert client.read_until(lambda: len(client.responses) == 9)
        statuses = [status for _seq, status, _id in client.responses]
        assert statuses.count(0x58) == 3
        assert [r.status for r in smsc.submits].count(0x58) == 3
        assert len(smsc.accepted) == 6


def test_rejects_and_undeliverable_receipts(bare: Any) -> None:
    behaviour = SmscBehaviour(reject={"84900000000": 0x0B}, undeliverable=frozenset({"84911111111"}))
    with running_smsc(behaviour) as smsc:
        client = bare(smsc)
        client.submit("84900000000", b"no such number")
        client.submit("84911111111", b"phone off")
        assert client.read_until(lambda: len(client.responses) == 2 and client.delivered)
        assert sorted(status for _s, status, _i in client.responses) == [0, 0x0B]
        (receipt,) = client.delivered
        assert b"stat:UNDELIV" in receipt.short_message
        assert receipt.message_state == 5


def test_concatenated_parts_are_reassembled(bare: Any) -> None:
    with running_smsc(SmscBehaviour(receipts=False)) as smsc:
        client = bare(smsc)
        parts = ["Chào ", "Đà ", "Nẵng"]
        for number, text in enumerate(parts, start=1):
            udh = bytes((0x05, 0x00, 0x03, 0x2A, len(parts), number))
            client.submit("84905123456", udh + text.encode("utf-16-be"), esm_class=0x40, data_coding=8)
        assert smsc.wait_until(lambda s: len(s.accepted) == 3, timeout=5)
        (message,) = smsc.reassembled()
        assert message.complete
        assert message.reference == 0x2A
        assert message.text == "Chào Đà Nẵng"


def test_receipt_ids_in_the_other_base_and_tlv_only(bare: Any) -> None:
    behaviour = SmscBehaviour(message_id_style="hex", receipt_id_form="decimal", receipt_style="tlv")
    with running_smsc(behaviour) as smsc:
        client = bare(smsc)
        client.submit("84905123456", b"x")
        assert client.read_until(lambda: client.responses and client.delivered)
        issued = client.responses[0][2].decode()
        receipt = client.delivered[0]
        assert receipt.short_message in (b"", None)
        assert receipt.receipted_message_id.decode() == str(int(issued, 16))


def test_mo_injection_and_redelivery_after_error_answer(bare: Any) -> None:
    with running_smsc(SmscBehaviour(redeliver_attempts=1)) as smsc:
        client = bare(smsc)
        answers = iter([0x64, 0])
        client.client.set_message_received_handler(lambda pdu: client.delivered.append(pdu) or next(answers))
        assert smsc.wait_until(lambda s: s.bound_sessions == 1, timeout=5)
        smsc.inject_mo("84905123456", "8088", "Xin chào")
        assert client.read_until(lambda: len(client.delivered) == 2)
        assert [d.short_message for d in client.delivered] == [b"Xin ch\x7fo"] * 2  # GSM 03.38: à = 0x7F
        assert smsc.wait_until(lambda s: [d.command_status for d in s.delivers] == [0x64, 0], timeout=5)


def test_drop_connections_cuts_the_link_and_counts_enquire_links(bare: Any) -> None:
    with running_smsc() as smsc:
        client = bare(smsc)
        client.client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client.client))
        assert smsc.wait_until(lambda s: s.connections and s.connections[0].enquire_links == 1, timeout=5)
        smsc.drop_connections()
        with pytest.raises(smpplib.exceptions.ConnectionError):
            client.read_until(lambda: False, reads=50)


def test_start_stop_is_usable_from_threads() -> None:
    with running_smsc() as smsc:
        assert smsc.running
        errors: list[BaseException] = []

        def poke() -> None:
            try:
                smsc.inject_mo("84905123456", "8088", "hi")  # no receiver bound: dropped, not raised
            except RuntimeError as exc:  # pragma: no cover - would be the failure
                errors.append(exc)

        thread = threading.Thread(target=poke)
        thread.start()
        thread.join(5)
        assert not errors
    assert not smsc.running
    smsc.stop()  # idempotent


def test_throttle_above_a_rate(bare: Any) -> None:
    with running_smsc(SmscBehaviour(throttle_tps=5, receipts=False)) as smsc:
        client = bare(smsc)
        for n in range(12):
            client.submit(f"849050000{n:02d}", b"x")
        assert client.read_until(lambda: len(client.responses) == 12)
        # 12 submits arrive well within one second on loopback: the first 5 pass, the rest are throttled.
        assert [r.status for r in smsc.submits].count(0) == 5
        assert [r.status for r in smsc.submits].count(0x58) == 7


def test_delayed_receipt_comes_after_the_response(bare: Any) -> None:
    with running_smsc(SmscBehaviour(receipt_delay=0.2)) as smsc:
        client = bare(smsc)
        client.submit("84905123456", b"x")
        assert client.read_until(lambda: bool(client.responses))
        assert not client.delivered
        assert client.read_until(lambda: bool(client.delivered))
        assert smsc.wait_until(lambda s: [d.command_status for d in s.delivers] == [0], timeout=5)


@pytest.mark.parametrize("relay", [True, False], ids=["relay", "direct"])
def test_a_port_taken_after_it_was_picked_is_picked_again(
    monkeypatch: pytest.MonkeyPatch, bare: Any, relay: bool
) -> None:
    """Between picking a free port and binding it another socket may take it: the SMSC picks another."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        picks = iter([taken])
        real_pick = server_module._free_port
        monkeypatch.setattr(server_module, "_free_port", lambda host: next(picks, None) or real_pick(host))
        with running_smsc(SmscBehaviour(relay=relay)) as smsc:
            assert smsc.port != taken
            client = bare(smsc)
            client.submit("84905123456", b"Hello")
            assert client.read_until(lambda: client.responses and client.delivered)
            assert [record.text for record in smsc.submits] == ["Hello"]
