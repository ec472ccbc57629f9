"""The APNs adapter against the local APNs peer (``channels/sandbox/apns.py``) over HTTP/2."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.base import OutboundMessage, SendOutcome, normalize_provider_id
from channels.errors import (
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
)
from channels.push.apns import ApnsAdapter
from channels.push.apns_auth import RENEW_AFTER
from channels.sandbox.apns import ApnsBehaviour, adapter_settings, running_apns, signing_key
from tests.channels.manual_clock import ManualClock


def _token(i: int) -> str:
    return f"{i:08x}" + "ab" * 28  # 64 hex digits, as APNs device tokens are


def _messages(tokens: list[str], *, start: int = 1, **options: object) -> list[OutboundMessage]:
    return [
        OutboundMessage(
            message_id=start + i,
            address=token,
            subject="Thông báo lịch cắt điện",
            body=f"Khu vực của ông/bà mất điện từ 8h đến 11h ngày mai ({start + i}).",
            options=options,
        )
        for i, token in enumerate(tokens)
    ]


def test_a_thousand_tokens_with_five_percent_unregistered(tmp_path: Path) -> None:
    tokens = [_token(i) for i in range(1000)]
    dead = frozenset(tokens[::20])
    with (
        running_apns(tmp_path, ApnsBehaviour(unregistered=dead)) as peer,
        ApnsAdapter(**adapter_settings(peer, tmp_path)) as adapter,
    ):
        results = adapter.send(_messages(tokens))
    assert peer.http_versions == {"2"}
    assert [r.message_id for r in results] == list(range(1, 1001))
    failed = [r for r in results if r.outcome == SendOutcome.FAILED]
    assert {tokens[r.message_id - 1] for r in failed} == dead
    assert all(isinstance(r.error, RecipientRejected) and r.error.code == "Unregistered" for r in failed)
    sent = [r for r in results if r.outcome == SendOutcome.SENT]
    assert len(sent) == 950
    assert sorted(peer.tokens()) == sorted(set(tokens) - dead)
    ids = [r.provider_ids[0] for r in sent]
    assert len(set(ids)) == 950
    assert all(normalize_provider_id(pid) == pid for pid in ids)
    assert len(peer.provider_tokens) == 1, "one provider token for the whole window"


def test_the_request_headers_and_payload(tmp_path: Path) -> None:
    with running_apns(tmp_path) as peer, ApnsAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        [result] = adapter.send(_messages([_token(1)], link="danang://outage/42", data={"kind": "power"}))
    assert result.outcome == SendOutcome.SENT, result.error
    [received] = peer.received
    assert received.payload == {
        "aps": {
            "alert": {
                "title": "Thông báo lịch cắt điện",
                "body": "Khu vực của ông/bà mất điện từ 8h đến 11h ngày mai (1).",
            }
        },
        "kind": "power",
        "link": "danang://outage/42",
    }
    assert received.headers["apns-topic"] == "vn.gov.danang.citizen"
    assert received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-priority"] == "10"
    assert result.provider_ids == (received.headers["apns-id"].lower(),)


def test_a_bad_device_token_is_recipient_rejected(tmp_path: Path) -> None:
    with (
        running_apns(tmp_path, ApnsBehaviour(bad_tokens=frozenset({"deadbeef"}))) as peer,
        ApnsAdapter(**adapter_settings(peer, tmp_path)) as adapter,
    ):
        results = adapter.send(_messages([_token(1), "deadbeef", _token(2)]))
    assert [r.outcome for r in results] == [SendOutcome.SENT, SendOutcome.FAILED, SendOutcome.SENT]
    assert isinstance(results[1].error, RecipientRejected)
    assert results[1].error.code == "BadDeviceToken"


def test_a_429_storm_is_throttled_then_the_same_messages_go(tmp_path: Path) -> None:
    messages = _messages([_token(i) for i in range(20)])
    with running_apns(tmp_path) as peer, ApnsAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        peer.storm(20)
        first = adapter.send(messages)
        assert all(isinstance(r.error, Throttled) for r in first), [r.error for r in first]
        assert all(r.error.retry_after for r in first if isinstance(r.error, Throttled))
        assert peer.received == []
        second = adapter.send(messages)
    assert {r.outcome for r in second} == {SendOutcome.SENT}
    assert sorted(peer.tokens()) == sorted(m.address for m in messages)


def test_the_provider_token_is_reused_and_renewed_after_50_minutes(tmp_path: Path) -> None:
    clock = ManualClock()
    with (
        running_apns(tmp_path) as peer,
        ApnsAdapter(**adapter_settings(peer, tmp_path), clock=clock) as adapter,
    ):
        adapter.send(_messages([_token(i) for i in range(10)]))
        clock.now += 20 * 60  # 20 minutes: the same token (APNs refuses renewals more often than that)
        adapter.send(_messages([_token(1)]))
        assert adapter.token_renewals == 1
        clock.now += RENEW_AFTER - 20 * 60
        adapter.send(_messages([_token(2)]))
        adapter.send(_messages([_token(3)]))
    assert adapter.token_renewals == 2


def test_a_payload_over_4_kb_is_refused_without_a_request(tmp_path: Path) -> None:
    with running_apns(tmp_path) as peer, ApnsAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        results = adapter.send(
            _messages([_token(1)], data={"notes": "x" * 4100}) + _messages([_token(2)], start=2)
        )
        assert peer.requests == 1
    assert isinstance(results[0].error, PermanentError)
    assert "4096" in str(results[0].error)
    assert results[1].outcome == SendOutcome.SENT


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"topic": "vn.gov.other.app"}, "TopicDisallowed"),
        ({"team_id": "ZZZ999ZZZZ"}, "InvalidProviderToken"),
        ({"key_id": "OTHERKEY01"}, "InvalidProviderToken"),
    ],
)
def test_settings_apns_refuses_are_configuration_errors(
    tmp_path: Path, overrides: dict[str, str], reason: str
) -> None:
    with (
        running_apns(tmp_path) as peer,
        ApnsAdapter(**adapter_settings(peer, tmp_path, **overrides)) as adapter,
    ):
        [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, ConfigurationError), result.error
    assert result.error.code == reason


def test_a_key_apns_does_not_know_is_a_configuration_error(tmp_path: Path) -> None:
    with running_apns(tmp_path) as peer:
        signing_key(peer.key.key_id).write(tmp_path / "stranger.p8")
        settings = adapter_settings(peer, tmp_path, private_key_file=str(tmp_path / "stranger.p8"))
        with ApnsAdapter(**settings) as adapter:
            [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, ConfigurationError)
    assert result.error.code == "InvalidProviderToken"


def test_no_answer_after_the_write_is_outcome_unknown(tmp_path: Path) -> None:
    with (
        running_apns(tmp_path, ApnsBehaviour(silent=True)) as peer,
        ApnsAdapter(**adapter_settings(peer, tmp_path, timeout=1.0)) as adapter,
    ):
        [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, OutcomeUnknown), result.error


def test_an_unreachable_endpoint_is_connection_lost(tmp_path: Path) -> None:
    with running_apns(tmp_path) as peer:
        settings = adapter_settings(peer, tmp_path, timeout=2.0)
    with ApnsAdapter(**settings) as adapter:  # nothing listens on the peer's port any more
        results = adapter.send(_messages([_token(1), _token(2)]))
    assert all(isinstance(r.error, ConnectionLost) for r in results), [r.error for r in results]


def test_a_key_file_that_is_not_p256_is_refused_at_open_naming_the_field(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "AuthKey.p8"
    path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    adapter = ApnsAdapter(team_id="T", key_id="K", private_key_file=str(path), topic="vn.gov.danang.citizen")
    with pytest.raises(ConfigurationError, match="private_key_file"):
        adapter.open()


@pytest.mark.parametrize(("keyword", "value"), [("topic", ""), ("concurrency", "many"), ("timeout", 0)])
def test_bad_settings_name_the_field(tmp_path: Path, keyword: str, value: object) -> None:
    settings: dict[str, object] = {
        "team_id": "T",
        "key_id": "K",
        "private_key_file": str(tmp_path / "k.p8"),
        "topic": "vn.gov.danang.citizen",
    }
    settings[keyword] = value
    with pytest.raises(ConfigurationError, match=keyword):
        ApnsAdapter(**settings)  # type: ignore[arg-type]


def test_over_https_http2_is_negotiated_by_alpn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path real APNs takes: TLS with ALPN ``h2``."""
    with running_apns(tmp_path, tls=True) as peer:
        assert peer.url.startswith("https://")
        assert peer.server is not None
        assert peer.server.ca_file is not None
        # Trust the throw-away CA: httpx reads SSL_CERT_FILE when its client is made.
        monkeypatch.setenv("SSL_CERT_FILE", str(peer.server.ca_file))
        with ApnsAdapter(**adapter_settings(peer, tmp_path)) as adapter:
            results = adapter.send(_messages([_token(i) for i in range(20)]))
        assert peer.http_versions == {"2"}
    assert {r.outcome for r in results} == {SendOutcome.SENT}
