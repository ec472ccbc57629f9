"""The sandbox SMSC's switches (``SmscBehaviour``) and what it records: submit_sm received, deliver_sm attempts,
relayed connections, and accepted parts put back together into messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ReceiptStyle = Literal["text", "tlv", "both"]
IdStyle = Literal["decimal", "hex", "uuid"]
ReceiptIdForm = Literal["as_issued", "decimal", "hex"]


@dataclass(frozen=True, slots=True)
class MoMessage:
    """A mobile-originated message to inject: a citizen writes ``text`` from ``sender`` to ``recipient``."""

    sender: str
    recipient: str
    text: str


@dataclass(frozen=True, slots=True)
class SmscBehaviour:
    """The switches of the sandbox SMSC. The defaults behave like a well-mannered SMSC."""

    receipts: bool = True  # send a receipt for every accepted part that asked for one (registered_delivery)
    receipt_delay: float = 0.0  # seconds; 0 = immediately, possibly before the ESME stored submit_sm_resp
    receipt_style: ReceiptStyle = "both"  # Appendix B text, TLVs 0x001E/0x0427, or both
    message_id_style: IdStyle = "hex"  # hex ids are upper-case, as many SMSCs send them
    receipt_id_form: ReceiptIdForm = "as_issued"  # write the id in the other base in receipts
    duplicate_receipts: bool = False  # send each receipt twice
    unknown_id_receipts: bool = False  # after each receipt, one for an id we never issued
    throttle_every: int = 0  # answer throttle_status to every Nth submit_sm (0 = never)
    throttle_tps: float = 0.0  # answer throttle_status above this many accepted submit_sm per second
    throttle_status: int = 0x58  # ESME_RTHROTTLED (or 0x14 ESME_RMSGQFUL)
    reject: Mapping[str, int] = field(default_factory=dict)  # destination -> command_status
    undeliverable: frozenset[str] = frozenset()  # destinations whose receipt says stat:UNDELIV
    undeliverable_error: int = 1  # their err: and GSM network error code (MAP 1: unknown subscriber)
    mo_messages: tuple[MoMessage, ...] = ()  # sent once to the first session that binds as a receiver
    redeliver_attempts: int = 2  # resend a deliver_sm answered with an error (e.g. 0x64) this many times
    redeliver_delay: float = 0.05
    deliver_timeout: float = 5.0  # seconds to wait for a deliver_sm_resp
    vendor_tlv: bool = True  # add a vendor TLV to receipts, as real SMSCs do (smpplib gotcha 5)
    idle_timeout: float | None = None  # close a connection silent this long (relay only)
    relay: bool = True  # put the TCP relay in front of smpp34 (see the package docstring)
    system_id: str = "SANDBOX"
    # Keep every submit_sm and deliver_sm in memory for ``submits``/``delivers`` (tests read them). A long
    # benchmark turns it off: the records grow with the messages (about 1.5 KiB each; GiB at millions).
    keep_records: bool = True


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One received submit_sm, as written to sms.jsonl."""

    time: str
    system_id: str
    session_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    udh_reference: int | None
    udh_total: int | None
    udh_number: int | None
    text: str
    short_message_hex: str
    message_id: str | None
    status: int  # command_status we answered (0 = accepted)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class DeliverRecord:
    """One deliver_sm attempt and the ESME's answer (``command_status`` None: no answer in time)."""

    time: str
    session_id: str
    kind: Literal["receipt", "mo"]
    receipted_id: str | None  # the id written into the receipt (receipts only)
    stat: str | None
    attempt: int
    command_status: int | None
    answered_at: float  # time.monotonic() when the answer (or the timeout) came


@dataclass(slots=True)
class ConnectionInfo:
    """What the relay saw of one client connection."""

    peer: str
    opened_at: float
    pdus: int = 0
    enquire_links: int = 0
    last_rx: float = 0.0
    closed_reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReassembledMessage:
    """Accepted parts of one message put back together (by source, destination, reference and total)."""

    source: str
    destination: str
    reference: int | None
    total: int
    parts: tuple[SubmitRecord, ...]

    @property
    def complete(self) -> bool:
        return len(self.parts) == self.total and [p.udh_number or 1 for p in self.parts] == list(
            range(1, self.total + 1)
        )

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts)

    @property
    def message_ids(self) -> tuple[str, ...]:
        return tuple(p.message_id or "" for p in self.parts)


def reassemble(accepted: Iterable[SubmitRecord]) -> list[ReassembledMessage]:
    """Accepted parts grouped into messages, in order of each message's first part."""
    groups: dict[tuple[str, str, int | None, int], dict[int, SubmitRecord]] = {}
    singles: list[ReassembledMessage] = []
    order: list[tuple[str, str, int | None, int] | ReassembledMessage] = []
    for record in accepted:
        if record.udh_total is None or record.udh_total <= 1:
            single = ReassembledMessage(record.source, record.destination, None, 1, (record,))
            singles.append(single)
            order.append(single)
            continue
        key = (record.source, record.destination, record.udh_reference, record.udh_total)
        if key not in groups:
            groups[key] = {}
            order.append(key)
        groups[key][record.udh_number or 0] = record  # a retried part replaces the earlier one
    result: list[ReassembledMessage] = []
    for item in order:
        if isinstance(item, ReassembledMessage):
            result.append(item)
        else:
            parts = tuple(groups[item][n] for n in sorted(groups[item]))
            result.append(ReassembledMessage(item[0], item[1], item[2], item[3], parts))
    return result
