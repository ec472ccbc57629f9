"""One contract every adapter passes (kombu's per-transport integration classes are the model).

Each case builds an adapter against its real peer (aiosmtpd, the smpp34 SMSC) or its local target, with one
address that the peer refuses at address level. The contract: one result per message in input order, the
provider ids name the message (in their normalised form), an address-level refusal is ``RecipientRejected``
without harming the rest of the window, as many ``send()`` calls at once as ``capabilities.overlap`` says,
receipts (where the adapter has them) parse into events for the ids it returned, and an adapter can be closed
and opened again.

What the dispatcher does with a failure depends on its class, so every registered adapter shows how it reports
a provider asking to slow down (``Throttled``), a settings problem (``ConfigurationError``) and a message that
may or may not have reached the provider (``OutcomeUnknown``), or says why it never does. Every registered
adapter also reads its own stored inbound records from the class alone, through the registry (no connection).
"""

from __future__ import annotations

import inspect
import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from channels import registry
from channels.base import (
    Adapter,
    Channel,
    DeliveryEvent,
    EventType,
    OutboundMessage,
    SendOutcome,
    SendResult,
    normalize_provider_id,
)
from channels.email.smtp import SmtpAdapter
from channels.errors import (
    ChannelError,
    ConfigurationError,
    OutcomeUnknown,
    RecipientRejected,
    Throttled,
    Withheld,
)
from channels.file import ConsoleAdapter, FileAdapter
from channels.push.apns import ApnsAdapter
from channels.push.fcm import FcmAdapter
from channels.sandbox import apns as apns_peer
from channels.sandbox import fcm as fcm_peer
from channels.sandbox.graph import GraphBehaviour, running_graph
from channels.sandbox.smtp import SmtpBehaviour
from channels.sandbox.zalo import ZaloBehaviour, running_zalo
from channels.sms.receipts import ids_match
from channels.social.facebook import FacebookPageAdapter
from channels.social.zalo import ZaloZnsAdapter
from tests.channels.test_dsn import POSTFIX_FAILED
from tests.peers.mute_smsc import MuteSmsc
from tests.peers.polling import wait_until
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc
from tests.peers.smtp import running_smtp_sandbox


@dataclass
class Case:
    adapter: Adapter
    good: list[str]  # addresses the peer accepts
    rejected: str  # an address the peer refuses at address level
    inbound: list[dict[str, Any]] = field(default_factory=list)  # raw records the adapter reported
    # Records its provider sends back by another way than the adapter (e-mail bounces), as they are stored.
    stored: list[dict[str, Any]] = field(default_factory=list)
    type_name: str = ""  # the registry's name for the adapter
    # The addresses its peer received messages for so far (adapters that ``stamps``).
    received: Callable[[], list[str]] | None = None


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
            stored=[{"dsn": POSTFIX_FAILED.decode(), "envelope_to": "bounce+m4242@bounce.danang.gov.vn"}],
            received=lambda: [r for mail in server.received for r in mail.rcpt_tos],
        )


@contextmanager
def smpp_case(tmp_path: Path) -> Iterator[Case]:
    behaviour = SmscBehaviour(reject={"84900000000": 0x0B})
    with running_smsc(behaviour) as smsc:
        case = Case(adapter=None, good=[f"8491234{i:04d}" for i in range(12)], rejected="84900000000")  # type: ignore[arg-type]
        case.adapter = adapter_for(smsc, on_inbound=case.inbound.append)
        case.received = lambda: [record.destination for record in smsc.submits]
        yield case


# Page ids the Graph peer knows, each with its Page access token; "9999" has a token the adapter sends but is a
# page the peer does not know (100/33: the object cannot be posted to).
GRAPH_PAGES = {f"10{i:02d}": f"EAAG-page-token-{i}" for i in range(12)}


@contextmanager
def facebook_case(tmp_path: Path) -> Iterator[Case]:
    with running_graph(GraphBehaviour(pages=GRAPH_PAGES)) as (_peer, url):
        adapter = FacebookPageAdapter(graph_url=url, page_tokens={**GRAPH_PAGES, "9999": "EAAG-page-token-x"})
        yield Case(adapter=adapter, good=sorted(GRAPH_PAGES), rejected="9999")


@contextmanager
def zalo_case(tmp_path: Path) -> Iterator[Case]:
    with running_zalo(ZaloBehaviour(not_on_zalo=frozenset({"84900000000"}))) as (peer, url):
        adapter = ZaloZnsAdapter(
            endpoint=url, access_token="zalo-oa-access-token", template_id="231677", body_param="content"
        )
        peer.deliver(
            "seed"
        )  # a delivery of an earlier message, already stored; the peer adds one per message
        yield Case(
            adapter=adapter,
            good=[f"8491234{i:04d}" for i in range(12)],
            rejected="84900000000",
            inbound=peer.webhooks,
        )


@contextmanager
def fcm_case(tmp_path: Path) -> Iterator[Case]:
    unregistered = "fcm-token-gone:APA91b"
    with fcm_peer.running_fcm(
        tmp_path, fcm_peer.FcmBehaviour(unregistered=frozenset({unregistered}))
    ) as peer:
        adapter = FcmAdapter(**fcm_peer.adapter_settings(peer, tmp_path))
        yield Case(adapter=adapter, good=[f"fcm-token-{i}:APA91b" for i in range(12)], rejected=unregistered)


@contextmanager
def apns_case(tmp_path: Path) -> Iterator[Case]:
    unregistered = "f" * 64
    with apns_peer.running_apns(
        tmp_path, apns_peer.ApnsBehaviour(unregistered=frozenset({unregistered}))
    ) as peer:
        adapter = ApnsAdapter(**apns_peer.adapter_settings(peer, tmp_path))
        yield Case(adapter=adapter, good=[f"{i:064x}" for i in range(12)], rejected=unregistered)


CASES: dict[str, Callable[[Path], AbstractContextManager[Case]]] = {
    "file": file_case,
    "console": console_case,
    "smtp": smtp_case,
    "smpp": smpp_case,
    "facebook": facebook_case,
    "zalo": zalo_case,
    "fcm": fcm_case,
    "apns": apns_case,
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    with CASES[request.param](tmp_path) as built:
        built.type_name = request.param
        yield built


def test_every_registered_adapter_has_a_case() -> None:
    assert set(CASES) == set(registry.known_types())


# The keyword the engine passes for each capability it wires (broadcaster/outbox/adapters.py).
WIRED = {
    "inbound": "on_inbound_batch",
    "paces": "pacer",
    "reports_health": "on_health",
    "stamps": "on_handing",
    "connects_in_background": "bind_in_background",
    "timed": "clock",
    "any_channel": "channel",
}


@pytest.mark.parametrize("type_name", registry.known_types())
def test_declared_capabilities_match_the_keywords_the_adapter_takes(type_name: str) -> None:
    cls = registry.load_adapter_class(type_name)
    parameters = inspect.signature(cls).parameters
    for flag, keyword in WIRED.items():
        assert getattr(cls.capabilities, flag) == (keyword in parameters), (flag, keyword)
    assert isinstance(inspect.getattr_static(cls, "parse_events"), staticmethod | classmethod)


@pytest.mark.parametrize("type_name", registry.known_types())
def test_the_settings_a_capability_names_are_the_adapters_own(type_name: str) -> None:
    """The engine reads ``targets_setting`` and ``templates_setting`` from the provider's section, which the
    adapter also takes; ``webhook`` needs the class's ``verify_inbound`` (the route calls it with no instance)."""
    cls = registry.load_adapter_class(type_name)
    parameters = inspect.signature(cls).parameters
    capabilities = cls.capabilities
    for setting in (capabilities.targets_setting, capabilities.templates_setting):
        assert setting is None or setting in parameters, setting
    assert capabilities.address_field in (None, "phone", "email")
    if capabilities.webhook:
        assert isinstance(inspect.getattr_static(cls, "verify_inbound"), staticmethod)
    else:
        assert not hasattr(cls, "verify_inbound")


def test_one_result_per_message_in_order(case: Case) -> None:
    messages = _messages(case.adapter.channel, case.good)
    with case.adapter as adapter:
        results = adapter.send(messages)
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert all(r.outcome == SendOutcome.SENT and r.error is None for r in results)
    ids = [pid for r in results for pid in r.provider_ids]
    assert len(ids) == len(set(ids)) >= len(messages), "every message gets its own provider id(s)"
    if case.adapter.channel == Channel.SMS:  # SMS part ids are stored and matched in their normalised form
        assert all(normalize_provider_id(pid) == pid for pid in ids), ids


def test_a_message_the_engine_withholds_is_never_written(case: Case) -> None:
    """``on_handing`` returns the messages that may go; the others (stopped since their claim, e.g. by an
    opt-out) are not written at all and come back as ``Withheld``, while the rest of the window goes."""
    if not case.adapter.capabilities.stamps:
        pytest.skip("no on_handing: the engine marks the window itself and leaves stopped rows out")
    messages = _messages(case.adapter.channel, case.good)
    withheld = {m.message_id for m in messages[::3]}  # the first one too: refused before its body
    told: list[int] = []

    def on_handing(ids: Any) -> list[int]:
        told.extend(ids)
        return [i for i in ids if i not in withheld]

    setattr(case.adapter, "on_handing", on_handing)  # noqa: B010  not part of the Adapter protocol
    with case.adapter as adapter:
        results = adapter.send(messages)

    assert sorted(set(told)) == [m.message_id for m in messages]
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    for r in results:
        if r.message_id in withheld:
            assert isinstance(r.error, Withheld), r  # failed, and why
        else:
            assert r.outcome == SendOutcome.SENT, r
    received = case.received
    assert received is not None
    stopped = {m.address.lstrip("+") for m in messages if m.message_id in withheld}
    going = {m.address.lstrip("+") for m in messages} - stopped
    assert wait_until(lambda: going <= set(received()) or None, timeout=5.0, what="the others received")
    assert stopped.isdisjoint(received())


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


def test_overlapping_sends_up_to_the_declared_overlap(case: Case) -> None:
    overlap = case.adapter.capabilities.overlap
    if overlap < 2:
        pytest.skip(f"{type(case.adapter).__name__} takes one send() at a time (capabilities.overlap is 1)")
    batches = [_messages(case.adapter.channel, case.good, start=1 + 100 * call) for call in range(overlap)]
    with case.adapter as adapter, ThreadPoolExecutor(max_workers=overlap) as pool:
        answers = list(pool.map(adapter.send, batches))
    for batch, results in zip(batches, answers, strict=True):
        assert [r.message_id for r in results] == [m.message_id for m in batch]
        assert {r.outcome for r in results} == {SendOutcome.SENT}, [str(r.error) for r in results]
    ids = [pid for results in answers for r in results for pid in r.provider_ids]
    assert len(ids) == len(set(ids)), "no provider id is given twice across overlapping calls"


# -- failure classes --------------------------------------------------------------------------------------


@dataclass
class Trial:
    """An adapter whose peer misbehaves in one way, and an address to send to."""

    adapter: Adapter
    address: str


@contextmanager
def smpp_throttled(tmp_path: Path) -> Iterator[Trial]:
    with running_smsc(SmscBehaviour(throttle_every=1, receipts=False)) as smsc:
        yield Trial(adapter_for(smsc, throttle_retries=1, throttle_backoff=0.01), "84912340001")


@contextmanager
def smpp_misconfigured(tmp_path: Path) -> Iterator[Trial]:
    # ESME_RINVSRCADR: the brandname is not registered for this account (a person must fix the settings).
    with running_smsc(SmscBehaviour(reject={"84912340001": 0x0A}, receipts=False)) as smsc:
        yield Trial(adapter_for(smsc), "84912340001")


@contextmanager
def smpp_silent(tmp_path: Path) -> Iterator[Trial]:
    server = MuteSmsc(on_submit="ignore")  # binds, then never answers a submit_sm
    try:
        yield Trial(adapter_for(server, pdu_timeout=0.5), "84912340001")
    finally:
        server.close()


@contextmanager
def smtp_with(tmp_path: Path, behaviour: SmtpBehaviour) -> Iterator[Trial]:
    with running_smtp_sandbox(tmp_path / "mail", behaviour) as server:
        adapter = SmtpAdapter(
            host="127.0.0.1", port=server.port, from_address="thongbao@danang.gov.vn", tls="none", timeout=5.0
        )
        yield Trial(adapter, "canbo1@danang.gov.vn")


@contextmanager
def file_unwritable(tmp_path: Path) -> Iterator[Trial]:
    (tmp_path / "taken").write_text("a file where the adapter wants a directory", encoding="utf-8")
    yield Trial(FileAdapter(path=tmp_path / "taken" / "out.jsonl"), "+84912340001")


@contextmanager
def graph_with(tmp_path: Path, behaviour: GraphBehaviour, *, timeout: float = 5.0) -> Iterator[Trial]:
    with running_graph(behaviour) as (_peer, url):
        yield Trial(FacebookPageAdapter(graph_url=url, page_tokens=GRAPH_PAGES, timeout=timeout), "1000")


@contextmanager
def zalo_with(tmp_path: Path, behaviour: ZaloBehaviour, *, timeout: float = 5.0) -> Iterator[Trial]:
    with running_zalo(behaviour) as (_peer, url):
        adapter = ZaloZnsAdapter(
            endpoint=url,
            access_token=behaviour.access_token,
            template_id="231677",
            body_param="content",
            timeout=timeout,
        )
        yield Trial(adapter, "84912340001")


@contextmanager
def fcm_with(
    tmp_path: Path, behaviour: fcm_peer.FcmBehaviour, *, storm: int = 0, **settings: Any
) -> Iterator[Trial]:
    with fcm_peer.running_fcm(tmp_path, behaviour) as peer:
        peer.storm(storm)  # 429 QUOTA_EXCEEDED with Retry-After for the next ``storm`` messages
        adapter = FcmAdapter(**fcm_peer.adapter_settings(peer, tmp_path, **settings))
        yield Trial(adapter, "fcm-token-1:APA91b")


@contextmanager
def apns_with(
    tmp_path: Path, behaviour: apns_peer.ApnsBehaviour, *, storm: int = 0, **settings: Any
) -> Iterator[Trial]:
    with apns_peer.running_apns(tmp_path, behaviour) as peer:
        peer.storm(storm)  # 429 TooManyRequests for the next ``storm`` notifications
        adapter = ApnsAdapter(**apns_peer.adapter_settings(peer, tmp_path, **settings))
        yield Trial(adapter, "0" * 64)


FAILURES: dict[tuple[str, type[ChannelError]], Callable[[Path], AbstractContextManager[Trial]]] = {
    ("smpp", Throttled): smpp_throttled,
    ("smpp", ConfigurationError): smpp_misconfigured,
    ("smpp", OutcomeUnknown): smpp_silent,
    ("smtp", Throttled): lambda p: smtp_with(
        p, SmtpBehaviour(temporary_every=1, temporary_reply="421 4.7.0 Too many messages")
    ),
    ("smtp", ConfigurationError): lambda p: smtp_with(p, SmtpBehaviour(reject_senders={"*"})),
    ("smtp", OutcomeUnknown): lambda p: smtp_with(p, SmtpBehaviour(drop_after_data_every=1)),
    ("file", ConfigurationError): file_unwritable,
    ("facebook", Throttled): lambda p: graph_with(
        p, GraphBehaviour(GRAPH_PAGES, throttle_code=4, retry_after=60)
    ),
    ("facebook", ConfigurationError): lambda p: graph_with(
        p, GraphBehaviour(GRAPH_PAGES, expired_tokens=True)
    ),
    # The peer makes the post, then holds its answer past the adapter's timeout.
    ("facebook", OutcomeUnknown): lambda p: graph_with(
        p, GraphBehaviour(GRAPH_PAGES, stall_posts=1), timeout=0.3
    ),
    ("zalo", Throttled): lambda p: zalo_with(p, ZaloBehaviour(throttle=True)),  # -144, the daily limit
    ("zalo", ConfigurationError): lambda p: zalo_with(p, ZaloBehaviour(expired_token=True)),  # -124
    # The peer takes the message, then holds its answer past the adapter's timeout.
    ("zalo", OutcomeUnknown): lambda p: zalo_with(p, ZaloBehaviour(stall_sends=1), timeout=0.3),
    ("fcm", Throttled): lambda p: fcm_with(p, fcm_peer.FcmBehaviour(), storm=1),
    ("fcm", ConfigurationError): lambda p: fcm_with(p, fcm_peer.FcmBehaviour(third_party_auth_error=True)),
    # The peer takes the request and never answers; the adapter gives up after its timeout.
    ("fcm", OutcomeUnknown): lambda p: fcm_with(p, fcm_peer.FcmBehaviour(silent=True), timeout=1.0),
    ("apns", Throttled): lambda p: apns_with(p, apns_peer.ApnsBehaviour(), storm=1),
    # The topic is not the app the team's key may push to (400 TopicDisallowed).
    ("apns", ConfigurationError): lambda p: apns_with(p, apns_peer.ApnsBehaviour(), topic="vn.gov.other.app"),
    ("apns", OutcomeUnknown): lambda p: apns_with(p, apns_peer.ApnsBehaviour(silent=True), timeout=1.0),
}
# Why an adapter never reports a class: it writes locally, so nothing asks it to slow down or leaves it in doubt.
NEVER: dict[tuple[str, type[ChannelError]], str] = {
    ("file", Throttled): "a local file never asks to slow down",
    ("file", OutcomeUnknown): "a local write either happened or raised",
    ("console", Throttled): "the console never asks to slow down",
    ("console", ConfigurationError): "the console has no settings to get wrong",
    ("console", OutcomeUnknown): "a console write either happened or raised",
}


def test_every_registered_adapter_shows_each_failure_class() -> None:
    wanted = {(t, e) for t in registry.known_types() for e in (Throttled, ConfigurationError, OutcomeUnknown)}
    assert wanted == set(FAILURES) | set(NEVER)
    assert not set(FAILURES) & set(NEVER)


@pytest.mark.parametrize(
    ("type_name", "error"),
    sorted(FAILURES, key=str),
    ids=[f"{t}-{e.__name__}" for t, e in sorted(FAILURES, key=str)],
)
def test_failures_are_reported_in_their_class(
    tmp_path: Path, type_name: str, error: type[ChannelError]
) -> None:
    """In the result of the message it hit, or (a settings problem found before any message) from open()."""
    with FAILURES[(type_name, error)](tmp_path) as trial:
        assert isinstance(trial.adapter, registry.load_adapter_class(type_name))
        try:
            with trial.adapter as adapter:
                results: list[SendResult] = adapter.send(_messages(adapter.channel, [trial.address]))
        except ConfigurationError as raised:
            assert error is ConfigurationError, f"open() raised {raised!r}"  # noqa: PT017  raising is one of two allowed outcomes
            return
    [result] = results
    assert result.outcome == SendOutcome.FAILED, repr(result.error)
    assert isinstance(result.error, error), repr(result.error)
    assert type(result.error) is not ChannelError
    assert str(result.error)


# -- inbound records ----------------------------------------------------------------------------------------


def test_own_inbound_records_parse_from_the_class_through_the_registry(case: Case) -> None:
    """The engine reads stored records long after (and in another process than) the adapter that took them:
    parsing needs the class alone, found by the provider's type."""
    capabilities = case.adapter.capabilities
    if capabilities.inbound:
        with case.adapter as adapter:
            results = adapter.send(_messages(adapter.channel, case.good[:2]))
            sent_ids = {pid for r in results for pid in r.provider_ids}
            wait_until(lambda: len(case.inbound) >= len(sent_ids), timeout=10, what="a record per part")
    records = case.inbound + case.stored
    if not capabilities.parses_inbound:
        assert records == []
        assert registry.parse_events(case.type_name, {}) == []
        return
    assert records, "an adapter that reads inbound records has some of its own to show"
    assert registry.inbound_type(case.adapter.channel) == case.type_name
    events = [
        e for record in records for e in registry.parse_events(case.type_name, json.loads(json.dumps(record)))
    ]
    assert events
    assert all(isinstance(e, DeliveryEvent) for e in events)
    for event in events:  # each names what it is about: a provider id the adapter returned, or our own id
        assert event.outbox_id is not None or normalize_provider_id(event.provider_id) == event.provider_id
    if case.stored:
        assert [(e.type, e.outbox_id) for e in events] == [(EventType.FAILED, 4242)]
