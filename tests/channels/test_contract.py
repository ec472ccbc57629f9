"""One contract every adapter passes (kombu's per-transport integration classes are the model).

Each case builds an adapter against its real peer (aiosmtpd, the smpp34 SMSC) or its local target, with one
address that the peer refuses at address level. The contract: one result per message in input order, the
provider ids name the message, an address-level refusal is ``RecipientRejected`` without harming the rest of
the window, receipts (where the adapter has them) parse into events for the ids it returned, and an adapter can
be closed and opened again.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from channels.base import Adapter, Channel, DeliveryEvent, EventType, OutboundMessage, SendOutcome
from channels.email.smtp import SmtpAdapter
from channels.errors import RecipientRejected
from channels.file import ConsoleAdapter, FileAdapter
from channels.sandbox.smtp import SmtpBehaviour
from channels.sms.receipts import ids_match
from tests.peers.polling import wait_until
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc
from tests.peers.smtp import running_smtp_sandbox


@dataclass
class Case:
    adapter: Adapter
    good: list[str]  # addresses the peer accepts
    rejected: str  # an address the peer refuses at address level
    inbound: list[dict[str, Any]] = field(default_factory=list)  # raw records the adapter reported


def _messages(channel: Channel, addresses: list[str], *, start: int = 1) -> list[OutboundMessage]:
    return [
        OutboundMessage(
            message_id=start + i,
            address=address,
            body=f"Thông báo số {start + i}: hồ sơ của ông/bà đã được tiếp nhận.",
            subject=f"Thông báo {start + i}" if channel == Channel.EMAIL else None,
            campaign_key="contract",
        )
        for i, address in enumerate(addresses)
    ]


@contextmanager
def file_case(tmp_path: Path) -> Iterator[Case]:
    adapter = FileAdapter(path=tmp_path / "out.jsonl", channel="sms", reject=["+84900000000"])
    yield Case(adapter=adapter, good=[f"+8491234{i:04d}" for i in range(12)], rejected="+84900000000")


@contextmanager
def console_case(tmp_path: Path) -> Iterator[Case]:
    adapter = ConsoleAdapter(channel="email", reject=["nobody@example.vn"], stream=io.StringIO())
    yield Case(adapter=adapter, good=[f"user{i}@example.vn" for i in range(12)], rejected="nobody@example.vn")


@contextmanager
def smtp_case(tmp_path: Path) -> Iterator[Case]:
    behaviour = SmtpBehaviour(reject_recipients=frozenset({"khongton@example.vn"}))
    with running_smtp_sandbox(tmp_path / "mail", behaviour) as server:
        adapter = SmtpAdapter(
            host="127.0.0.1",
            port=server.port,
            from_address="thongbao@danang.gov.vn",
            tls="none",
            connections=2,
        )
        yield Case(
            adapter=adapter,
            good=[f"canbo{i}@danang.gov.vn" for i in range(12)],
            rejected="khongton@example.vn",
        )


@contextmanager
def smpp_case(tmp_path: Path) -> Iterator[Case]:
    behaviour = SmscBehaviour(reject={"84900000000": 0x0B})
    with running_smsc(behaviour) as smsc:
        case = Case(adapter=None, good=[f"8491234{i:04d}" for i in range(12)], rejected="84900000000")  # type: ignore[arg-type]
        case.adapter = adapter_for(smsc, on_inbound=case.inbound.append)
        yield case


CASES: dict[str, Callable[[Path], AbstractContextManager[Case]]] = {
    "file": file_case,
    "console": console_case,
    "smtp": smtp_case,
    "smpp": smpp_case,
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    with CASES[request.param](tmp_path) as built:
        yield built


def test_one_result_per_message_in_order(case: Case) -> None:
    messages = _messages(case.adapter.channel, case.good)
    with case.adapter as adapter:
        results = adapter.send(messages)
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert all(r.outcome == SendOutcome.SENT and r.error is None for r in results)
    ids = [pid for r in results for pid in r.provider_ids]
    assert len(ids) == len(set(ids)) >= len(messages), "every message gets its own provider id(s)"


def test_window_fits_capabilities(case: Case) -> None:
    window = case.adapter.capabilities.window
    assert window >= 1
    addresses = (case.good * (window // len(case.good) + 1))[: min(window, 60)]
    with case.adapter as adapter:
        results = adapter.send(_messages(case.adapter.channel, addresses))
    assert len(results) == len(addresses)
    assert {r.outcome for r in results} == {SendOutcome.SENT}


def test_address_refusal_is_recipient_rejected_and_spares_the_rest(case: Case) -> None:
    addresses = [case.good[0], case.rejected, case.good[1]]
    with case.adapter as adapter:
        results = adapter.send(_messages(case.adapter.channel, addresses))
    assert [r.outcome for r in results] == [SendOutcome.SENT, SendOutcome.FAILED, SendOutcome.SENT]
    assert isinstance(results[1].error, RecipientRejected)
    assert str(results[1].error), "the error carries the provider's answer"


def test_close_and_reopen(case: Case) -> None:
    adapter = case.adapter
    adapter.open()
    first = adapter.send(_messages(adapter.channel, case.good[:2]))
    adapter.close()
    adapter.open()
    second = adapter.send(_messages(adapter.channel, case.good[2:4], start=100))
    adapter.close()
    assert {r.outcome for r in first + second} == {SendOutcome.SENT}
    assert [r.message_id for r in second] == [100, 101]


def test_receipts_parse_into_events_for_the_returned_ids(case: Case) -> None:
    if not case.adapter.capabilities.receipts:
        pytest.skip(f"{type(case.adapter).__name__} reports no receipts (capabilities.receipts is False)")
    with case.adapter as adapter:
        results = adapter.send(_messages(adapter.channel, case.good[:3]))
        sent_ids = {pid for r in results for pid in r.provider_ids}
        wait_until(lambda: len(case.inbound) >= len(sent_ids), timeout=10, what="a receipt per part")
        events: list[DeliveryEvent] = [e for raw in case.inbound for e in adapter.parse_events(raw)]
    assert {e.type for e in events} == {EventType.DELIVERED}
    for provider_id in sent_ids:
        assert any(ids_match(provider_id, e.provider_id) for e in events), provider_id
    json.dumps(case.inbound)  # raw records are storable as they are (JSON)
