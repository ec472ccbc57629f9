"""The SMPP adapter's own wire code, without an SMSC: the submit_sm_resp fast path, splitting a byte stream into
PDUs, and how far a batched write got when the socket broke (SMPP v3.4 §3.2: a 4-octet command_length leads
every PDU). PDUs are built with smpplib, the library whose parser the fast path stands in for.
"""

from __future__ import annotations

import itertools
import socket
import struct
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

from channels.sms import pdus
from channels.sms.encoding import split
from channels.sms.smpp.bind import Bind
from channels.sms.smpp.client import LockedClient, WriteFailed
from channels.sms.smpp.session import read_pdus

READ_TIMEOUT = 0.2  # how long read_pdus waits on a quiet socket before it reports "nothing" (None)


def library_client() -> Any:
    """A plain smpplib client, never connected: PDUs take their defaults from it."""
    return smpplib.client.Client("x", 1, allow_unknown_opt_params=True)


def make_pdu(command: str, *, sequence: int, status: int = 0, **fields: Any) -> Any:
    pdu = smpplib.smpp.make_pdu(command, client=library_client(), **fields)
    pdu.sequence = sequence
    pdu.status = status
    return pdu


def submit_sm(sequence: int, text: bytes) -> bytes:
    return bytes(
        make_pdu(
            "submit_sm",
            sequence=sequence,
            source_addr="SKHCN",
            destination_addr="84905000001",
            short_message=text,
        ).generate()
    )


# -- pdus.read_submit_sm_resp-------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequence", "status", "message_id"),
    [
        pytest.param(7, 0x00, "1A2B", id="accepted"),
        pytest.param(0x7FFFFFFF, 0x00, "5f5e100-" + "9" * 56, id="highest-sequence-65-octet-id"),
        pytest.param(8, 0x45, "", id="refused-empty-id"),  # ESME_RSUBMITFAIL
        pytest.param(9, 0x58, "", id="throttled-empty-id"),  # ESME_RTHROTTLED
    ],
)
def test_submit_sm_resp_reads_what_smpplib_reads(sequence: int, status: int, message_id: str) -> None:
    """The fast path gives the same sequence, status and message id as smpplib's parser (empty id: None)."""
    raw = bytes(
        make_pdu("submit_sm_resp", sequence=sequence, status=status, message_id=message_id).generate()
    )
    parsed = smpplib.smpp.parse_pdu(raw, client=library_client(), allow_unknown_opt_params=True)
    parsed_id = parsed.message_id.decode("latin-1") if parsed.message_id else None

    assert pdus.read_submit_sm_resp(raw) == (parsed.sequence, parsed.status, parsed_id)
    assert parsed.sequence == sequence
    assert parsed.status == status
    assert parsed_id == (message_id or None)


def test_submit_sm_resp_without_a_body_has_no_message_id() -> None:
    """A refusal may be a bare 16-octet header (§4.4.2: no body on a non-zero status): no id, no error."""
    raw = struct.pack(">IIII", 16, 0x80000004, 0x58, 1234)

    assert pdus.read_submit_sm_resp(raw) == (1234, 0x58, None)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(make_pdu("deliver_sm_resp", sequence=7).generate(), id="deliver_sm_resp"),
        pytest.param(make_pdu("generic_nack", sequence=7, status=0x03).generate(), id="generic_nack"),
        pytest.param(make_pdu("enquire_link", sequence=7).generate(), id="enquire_link"),
        pytest.param(submit_sm(7, b"1A2B"), id="submit_sm"),
    ],
)
def test_other_commands_are_not_taken_for_a_submit_sm_resp(raw: bytes) -> None:
    """Any command but submit_sm_resp is left to the generic parser (None), even a generic_nack."""
    assert pdus.read_submit_sm_resp(bytes(raw)) is None


# -- pdus.SubmitSmWriter, pdus.deliver_sm_resp ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source", "destination", "registered"),
    [
        pytest.param("Xin chao", "SKHCN", "84905000001", True, id="gsm7-one-part"),
        pytest.param("Mưa lớn ở Đà Nẵng, " * 12, "DANANG", "84905123456", True, id="ucs2-three-parts"),
        pytest.param("x" * 400, "SoKHCN-DN", "84" + "9" * 18, False, id="gsm7-long-no-receipt-20-digits"),
        pytest.param("", "1022", "84905000002", True, id="empty-text"),
    ],
)
def test_submit_sm_octets_are_what_smpplib_writes(
    text: str, source: str, destination: str, registered: bool
) -> None:
    """Every part, written by hand, is byte for byte the submit_sm smpplib builds from the same fields."""
    writer = pdus.SubmitSmWriter(
        source_ton=5,
        source_npi=0,
        source_addr=source,
        dest_ton=1,
        dest_npi=1,
        registered_delivery=int(registered),
    )
    parts = split(text, reference=42)
    for number, part in enumerate(parts.parts, start=1):
        expected = make_pdu(
            "submit_sm",
            sequence=1000 + number,
            source_addr_ton=5,
            source_addr_npi=0,
            source_addr=source,
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=destination,
            esm_class=parts.esm_class,
            data_coding=parts.data_coding,
            registered_delivery=int(registered),
            short_message=part.short_message,
        ).generate()
        got = writer.submit_sm(
            1000 + number,
            destination=pdus.address(destination),
            esm_class=parts.esm_class,
            data_coding=parts.data_coding,
            short_message=part.short_message,
        )
        assert got == bytes(expected)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("8" * 21, id="21-digits"),
        pytest.param("84905\x00001", id="nul-inside"),
        pytest.param("8490500000ở", id="not-ascii"),
    ],
)
def test_an_address_that_cannot_be_a_c_octet_string_is_refused(bad: str) -> None:
    """smpplib would cut a long address short and send it to someone else; we refuse it."""
    with pytest.raises(ValueError, match="destination_addr"):
        pdus.address(bad)


def test_a_short_message_over_254_octets_is_refused() -> None:
    writer = pdus.SubmitSmWriter(
        source_ton=5, source_npi=0, source_addr="SKHCN", dest_ton=1, dest_npi=1, registered_delivery=1
    )
    with pytest.raises(ValueError, match="254"):
        writer.submit_sm(
            1, destination=pdus.address("84905000001"), esm_class=0, data_coding=0, short_message=b"x" * 255
        )


@pytest.mark.parametrize(("sequence", "status"), [(1, 0x00), (0x7FFFFFFF, 0x64)])
def test_deliver_sm_resp_octets_are_what_smpplib_writes(sequence: int, status: int) -> None:
    expected = make_pdu("deliver_sm_resp", sequence=sequence, status=status).generate()

    assert pdus.deliver_sm_resp(sequence, status) == bytes(expected)


# -- read_pdus ---------------------------------------------------------------------------------------------


class Wire:
    """A socketpair: the adapter reads ``ours`` through a stand-in client, the test writes ``theirs``."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.settimeout(READ_TIMEOUT)
        self.client: Any = SimpleNamespace(sock=self.ours)
        self.bind = Bind(index=0)

    def read(self) -> list[bytes] | None:
        return read_pdus(self.bind, self.client)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    pair = Wire()
    yield pair
    pair.close()


def submit_sms(count: int) -> list[bytes]:
    """``count`` submit_sm of different lengths (so no boundary falls where a fixed size would put it)."""
    return [submit_sm(n + 1, b"x" * (n * 7 % 40)) for n in range(count)]


def test_every_whole_pdu_of_one_read_comes_back_at_once(wire: Wire) -> None:
    """Five PDUs waiting on the socket are returned by one call, whole and in order."""
    sent = submit_sms(5)
    wire.theirs.sendall(b"".join(sent))

    assert wire.read() == sent
    assert wire.bind.buffer == bytearray()


def test_a_partial_pdu_stays_buffered_until_the_rest_arrives(wire: Wire) -> None:
    """A PDU cut after 5 octets is kept across a quiet read (None) and returned once completed."""
    first, second = submit_sms(2)
    wire.theirs.sendall(first + second[:5])

    assert wire.read() == [first]
    assert wire.read() is None  # quiet socket: nothing lost, nothing invented
    assert bytes(wire.bind.buffer) == second[:5]
    wire.theirs.sendall(second[5:])
    assert wire.read() == [second]


def test_a_header_split_inside_command_length_is_reassembled(wire: Wire) -> None:
    """Even the 4-octet length itself may arrive in two reads."""
    [only] = submit_sms(1)
    wire.theirs.sendall(only[:2])
    assert wire.read() is None
    wire.theirs.sendall(only[2:])

    assert wire.read() == [only]


@pytest.mark.parametrize("length", [0, 15, 64 * 1024 + 1])
def test_pdus_before_a_broken_length_are_handed_over_then_the_stream_fails(wire: Wire, length: int) -> None:
    """Good PDUs ahead of an impossible command_length are returned; the next call raises ConnectionError."""
    good = submit_sms(2)
    wire.theirs.sendall(b"".join(good) + length.to_bytes(4, "big") + b"\x00" * 12)

    assert wire.read() == good
    with pytest.raises(smpplib.exceptions.ConnectionError, match=f"command_length {length}"):
        wire.read()


def test_a_broken_length_first_fails_at_once(wire: Wire) -> None:
    """With nothing good before it, a broken command_length raises on the first call."""
    wire.theirs.sendall((8).to_bytes(4, "big") + b"\x00" * 12)

    with pytest.raises(smpplib.exceptions.ConnectionError):
        wire.read()


def test_pdus_sent_before_the_peer_closed_are_read_before_the_close(wire: Wire) -> None:
    """The PDUs the SMSC wrote before closing come first; only then does the closed socket raise."""
    sent = submit_sms(3)
    wire.theirs.sendall(b"".join(sent))
    wire.theirs.close()

    assert wire.read() == sent
    with pytest.raises(smpplib.exceptions.ConnectionError, match="closed"):
        wire.read()


def test_a_client_without_a_socket_fails(wire: Wire) -> None:
    """A client whose socket is gone raises ConnectionError instead of reading."""
    closed: Any = SimpleNamespace(sock=None)
    with pytest.raises(smpplib.exceptions.ConnectionError):
        read_pdus(wire.bind, closed)


# -- LockedClient.send_octets------------------------------------------------------------------------------


class BreakingSocket:
    """Accepts at most ``step`` octets per send() and ``budget`` in all, then raises BrokenPipeError."""

    def __init__(self, budget: int, step: int = 13) -> None:
        self.budget = budget
        self.step = step
        self.received = bytearray()

    def send(self, data: memoryview) -> int:
        room = min(self.budget - len(self.received), self.step, len(data))
        if room <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.received += bytes(data[:room])
        return room


@pytest.fixture
def client() -> Iterator[LockedClient]:
    bound = LockedClient("127.0.0.1", 1, timeout=1.0)
    bound.state = smpplib.consts.SMPP_CLIENT_STATE_BOUND_TRX
    yield bound
    bound._socket = None  # never a real socket: nothing to close (and no "was not closed" warning)


def window(client: LockedClient, count: int) -> list[bytes]:
    return [submit_sm(n + 1, b"y" * (n * 11 % 50)) for n in range(count)]


def whole_pdus_within(lengths: list[int], octets: int) -> int:
    """How many PDUs end at or before ``octets`` into their concatenation."""
    return sum(1 for end in itertools.accumulate(lengths) if end <= octets)


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda ends: 0, id="nothing-written"),
        pytest.param(lambda ends: ends[0] - 1, id="one-octet-short-of-the-first"),
        pytest.param(lambda ends: ends[0], id="exactly-the-first"),
        pytest.param(lambda ends: ends[2] + 1, id="one-octet-into-the-fourth"),
        pytest.param(lambda ends: ends[-1] - 1, id="one-octet-short-of-all"),
    ],
)
def test_a_broken_write_reports_how_many_pdus_went_out_whole(client: LockedClient, cut: Any) -> None:
    """When the socket breaks after N octets, complete counts exactly the PDUs that lie wholly inside them."""
    chunks = window(client, 6)
    ends = list(itertools.accumulate(len(c) for c in chunks))
    octets = cut(ends)
    sock = BreakingSocket(budget=octets)
    client._socket = sock

    with pytest.raises(WriteFailed) as failure:
        client.send_octets("submit_sm", chunks)

    assert failure.value.complete == whole_pdus_within([len(c) for c in chunks], octets)
    assert bytes(sock.received) == b"".join(chunks)[:octets]  # partial sends were continued, in order
    assert isinstance(failure.value, smpplib.exceptions.ConnectionError)  # callers catch it as a lost link


def test_a_write_the_socket_accepts_in_pieces_sends_every_octet(client: LockedClient) -> None:
    """Short sends are continued until the whole window is out; no error."""
    chunks = window(client, 6)
    expected = b"".join(chunks)
    sock = BreakingSocket(budget=len(expected), step=5)
    client._socket = sock

    client.send_octets("submit_sm", chunks)

    assert bytes(sock.received) == expected


def test_a_state_that_forbids_the_command_writes_nothing(client: LockedClient) -> None:
    """An unbound session refuses the window before touching the socket: nothing complete, nothing sent."""
    sock = BreakingSocket(budget=10_000)
    client._socket = sock
    client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN

    with pytest.raises(WriteFailed) as failure:
        client.send_octets("submit_sm", window(client, 3))

    assert failure.value.complete == 0
    assert sock.received == bytearray()


def test_a_closed_socket_writes_nothing(client: LockedClient) -> None:
    """With no socket the write fails with nothing complete."""
    with pytest.raises(WriteFailed) as failure:
        client.send_octets("submit_sm", window(client, 2))

    assert failure.value.complete == 0
