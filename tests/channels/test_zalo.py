"""The Zalo ZNS adapter against the local ZNS peer (channels/sandbox/zalo.py), its error table, its webhook events
and the webhook signature check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from channels import registry
from channels.base import EventType, OutboundMessage, SendOutcome
from channels.errors import (
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.sandbox.zalo import OA_ID, OA_SECRET, ZaloBehaviour, ZaloPeer, running_zalo
from channels.social.zalo import ZaloZnsAdapter, verify_signature, zns_phone
from channels.social.zns_errors import error_class
from tests.conftest import free_port

TOKEN = "zalo-oa-access-token"
TEMPLATE = {"template_id": "231677", "template_data": {"content": "Lịch tiêm chủng: 8h ngày 2/12"}}


@pytest.fixture
def zalo() -> Iterator[tuple[ZaloPeer, str]]:
    behaviour = ZaloBehaviour(
        not_on_zalo=frozenset({"84900000001"}), cannot_receive=frozenset({"84900000002"})
    )
    with running_zalo(behaviour) as running:
        yield running


def _adapter(url: str, **settings: Any) -> ZaloZnsAdapter:
    settings.setdefault("access_token", TOKEN)
    settings.setdefault("timeout", 2.0)
    return ZaloZnsAdapter(endpoint=url, **settings)


def _message(address: str = "+84912345678", *, message_id: int = 7, **options: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id, address=address, body="Nội dung", options=options or TEMPLATE
    )


def test_a_template_message_goes_with_the_phone_in_84_form_and_our_id_as_tracking_id(
    zalo: tuple[ZaloPeer, str],
) -> None:
    peer, url = zalo
    with _adapter(url) as adapter:
        [result] = adapter.send([_message("0912345678")])
    assert result.outcome == SendOutcome.SENT, result.error
    [sent] = peer.sent
    assert (sent.phone, sent.template_id, sent.tracking_id) == ("84912345678", "231677", "7")
    assert sent.template_data == TEMPLATE["template_data"]
    assert result.provider_ids == (sent.msg_id,)


def test_the_body_fills_the_provider_template_when_the_message_names_none(zalo: tuple[ZaloPeer, str]) -> None:
    peer, url = zalo
    with _adapter(url, template_id="231677", body_param="content") as adapter:
        [result] = adapter.send([OutboundMessage(message_id=1, address="+84912345678", body="Thông báo")])
    assert result.outcome == SendOutcome.SENT
    assert peer.sent[0].template_data == {"content": "Thông báo"}


def test_a_message_without_a_template_fails_naming_the_option(zalo: tuple[ZaloPeer, str]) -> None:
    peer, url = zalo
    with _adapter(url) as adapter:
        [result] = adapter.send([OutboundMessage(message_id=1, address="+84912345678", body="x")])
    assert type(result.error) is PermanentError
    assert "template_id" in str(result.error)
    assert peer.received == []


@pytest.mark.parametrize(
    ("address", "expected", "code"),
    [
        ("+84900000001", RecipientRejected, "-118"),  # no Zalo account
        ("+84900000002", RecipientRejected, "-119"),  # cannot receive ZNS
    ],
)
def test_phones_the_peer_refuses_are_rejected_and_spare_the_rest(
    zalo: tuple[ZaloPeer, str], address: str, expected: type, code: str
) -> None:
    peer, url = zalo
    with _adapter(url) as adapter:
        results = adapter.send(
            [_message(message_id=1), _message(address, message_id=2), _message(message_id=3)]
        )
    assert [r.outcome for r in results] == [SendOutcome.SENT, SendOutcome.FAILED, SendOutcome.SENT]
    error = results[1].error
    assert type(error) is expected
    assert error is not None
    assert error.code == code
    assert "84900000" not in str(results[1].error), "the phone number is masked"
    assert len(peer.sent) == 2


def test_a_malformed_phone_is_rejected_without_a_request(zalo: tuple[ZaloPeer, str]) -> None:
    peer, url = zalo
    with _adapter(url) as adapter:
        [result] = adapter.send([_message("not-a-phone")])
    assert isinstance(result.error, RecipientRejected)
    assert peer.received == []


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"template_id": "999", "template_data": {"content": "x"}}, "-109"),
        ({"template_id": "231677", "template_data": {"other": "x"}}, "-112"),
        ({"template_id": "231677", "template_data": {}}, "-111"),
    ],
)
def test_template_refusals_are_permanent(
    zalo: tuple[ZaloPeer, str], options: dict[str, Any], code: str
) -> None:
    _peer, url = zalo
    with _adapter(url) as adapter:
        [result] = adapter.send([_message(**options)])
    assert type(result.error) is PermanentError
    assert result.error.code == code


def test_a_wrong_token_is_a_settings_problem(zalo: tuple[ZaloPeer, str]) -> None:
    _peer, url = zalo
    with _adapter(url, access_token="expired") as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, ConfigurationError)
    assert result.error.code == "-124"


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [(ZaloBehaviour(expired_token=True), ConfigurationError), (ZaloBehaviour(throttle=True), Throttled)],
)
def test_a_refused_token_or_limit_stops_the_rest_of_the_window(
    behaviour: ZaloBehaviour, expected: type
) -> None:
    with running_zalo(behaviour) as (peer, url), _adapter(url) as adapter:
        results = adapter.send([_message(message_id=i) for i in (1, 2, 3)])
    assert [type(r.error) for r in results] == [expected] * 3
    assert len(peer.received) == 1, "one OA token and one quota: the others are not tried"
    assert all("not sent" in str(r.error) for r in results[1:])


def test_the_daily_limit_is_throttled() -> None:
    with running_zalo(ZaloBehaviour(throttle=True)) as (peer, url), _adapter(url) as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, Throttled)
    assert peer.sent == []


def test_a_stalled_answer_is_an_unknown_outcome() -> None:
    with running_zalo(ZaloBehaviour(stall_sends=1)) as (peer, url), _adapter(url, timeout=0.3) as adapter:
        [result] = adapter.send([_message()])
        assert isinstance(result.error, OutcomeUnknown), result
        assert len(peer.sent) == 1  # the peer took it: a blind resend would send it twice


def test_an_unreachable_endpoint_is_a_lost_connection() -> None:
    with _adapter(f"http://127.0.0.1:{free_port()}") as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, ConnectionLost)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (-100, TransientError),
        (-101, ConfigurationError),
        (-104, ConfigurationError),
        (-105, ConfigurationError),
        (-108, RecipientRejected),
        (-109, PermanentError),
        (-112, PermanentError),
        (-115, ConfigurationError),
        (-118, RecipientRejected),
        (-119, RecipientRejected),
        (-124, ConfigurationError),
        (-144, Throttled),
        (-999, PermanentError),
    ],
)
def test_zns_codes_map_to_the_documented_classes(code: int, expected: type) -> None:
    assert error_class(code, 200) is expected


def test_http_statuses_without_a_code() -> None:
    assert error_class(None, 429) is Throttled
    assert error_class(None, 502) is TransientError
    assert error_class(None, 404) is PermanentError


@pytest.mark.parametrize(
    ("address", "phone"),
    [("+84912345678", "84912345678"), ("84912345678", "84912345678"), ("0912 345 678", "84912345678")],
)
def test_phone_forms(address: str, phone: str) -> None:
    assert zns_phone(address) == phone


def test_delivery_events_parse_from_the_stored_webhook_event(zalo: tuple[ZaloPeer, str]) -> None:
    peer, url = zalo
    with _adapter(url) as adapter:
        [result] = adapter.send([_message()])
    [event_record] = peer.webhooks
    stored = json.loads(json.dumps(event_record))
    [event] = registry.parse_events("zalo", stored)
    assert event.type == EventType.DELIVERED
    assert (event.provider_id,) == result.provider_ids
    assert event.occurred_at is not None
    assert event.occurred_at.tzinfo is not None
    assert registry.inbound_type("social") == "zalo"


def test_other_webhook_events_are_not_deliveries() -> None:
    assert ZaloZnsAdapter.parse_events({"event_name": "user_send_text", "message": {"msg_id": "abc"}}) == []
    assert ZaloZnsAdapter.parse_events({}) == []


def test_the_webhook_signature_accepts_the_signed_body_and_refuses_a_tampered_one(
    zalo: tuple[ZaloPeer, str],
) -> None:
    peer, _url = zalo
    peer.deliver("00ff")
    [signed] = peer.signed
    header = signed.headers["X-ZEvent-Signature"]
    assert verify_signature(body=signed.body, header=header, oa_id=OA_ID, oa_secret=OA_SECRET)
    assert verify_signature(body=signed.body, header=f"mac={header}", oa_id=OA_ID, oa_secret=OA_SECRET)
    tampered = signed.body.replace(b"00ff", b"00fe")
    assert not verify_signature(body=tampered, header=header, oa_id=OA_ID, oa_secret=OA_SECRET)
    assert not verify_signature(body=signed.body, header=header, oa_id=OA_ID, oa_secret="another secret")
    assert not verify_signature(body=b"not json", header=header, oa_id=OA_ID, oa_secret=OA_SECRET)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"access_token": ""}, "access_token"),
        ({"timeout": -1}, "timeout"),
        ({"body_param": " "}, "body_param"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    settings.setdefault("access_token", TOKEN)
    with pytest.raises(ValueError, match=field):
        ZaloZnsAdapter(**settings)


def test_the_token_and_secret_stay_out_of_its_repr() -> None:
    text = repr(ZaloZnsAdapter(access_token=TOKEN, oa_secret=OA_SECRET))
    assert TOKEN not in text
    assert OA_SECRET not in text


def test_the_body_fills_body_param_beside_the_campaigns_other_parameters(zalo: tuple[ZaloPeer, str]) -> None:
    peer, url = zalo
    with _adapter(url, body_param="content") as adapter:
        adapter.send([_message(template_id="231677", template_data={"ho_ten": "An"})])
    assert peer.received[-1]["template_data"] == {"ho_ten": "An", "content": "Nội dung"}


def test_verify_inbound_checks_the_signature_with_the_providers_settings(zalo: tuple[ZaloPeer, str]) -> None:
    peer, _url = zalo
    peer.deliver("a1b2c3")
    webhook = peer.signed[-1]
    options = {"oa_id": OA_ID, "oa_secret": OA_SECRET, "access_token": TOKEN}
    headers = dict(webhook.headers)
    assert ZaloZnsAdapter.verify_inbound(headers, webhook.body, options)
    assert ZaloZnsAdapter.verify_inbound({k.lower(): v for k, v in headers.items()}, webhook.body, options)
    assert not ZaloZnsAdapter.verify_inbound({}, webhook.body, options)
    assert not ZaloZnsAdapter.verify_inbound(headers, webhook.body + b" ", options)
    assert not ZaloZnsAdapter.verify_inbound(headers, webhook.body, {**options, "oa_secret": "other"})
    assert not ZaloZnsAdapter.verify_inbound(headers, webhook.body, {"access_token": TOKEN})
