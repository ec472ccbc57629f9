"""The FCM adapter against the local FCM peer (``channels/sandbox/fcm.py``) over HTTP/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channels.base import OutboundMessage, SendOutcome, normalize_provider_id
from channels.errors import (
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
)
from channels.push.fcm import FcmAdapter
from channels.sandbox.fcm import FcmBehaviour, adapter_settings, running_fcm, service_account
from tests.channels.manual_clock import ManualClock


def _token(i: int) -> str:
    return f"dTok{i:05d}:APA91b" + "x" * 120


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
        running_fcm(tmp_path, FcmBehaviour(unregistered=dead)) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter,
    ):
        results = adapter.send(_messages(tokens))
        assert peer.http_versions == {"2"}
    assert [r.message_id for r in results] == list(range(1, 1001))
    rejected = {tokens[r.message_id - 1] for r in results if r.outcome == SendOutcome.FAILED}
    assert rejected == dead
    assert all(isinstance(r.error, RecipientRejected) for r in results if r.outcome == SendOutcome.FAILED)
    sent = [r for r in results if r.outcome == SendOutcome.SENT]
    assert len(sent) == 950
    assert sorted(peer.tokens()) == sorted(set(tokens) - dead)
    ids = [r.provider_ids[0] for r in sent]
    assert len(set(ids)) == 950
    assert all(pid.startswith("projects/danang-city-app/messages/0:") for pid in ids)
    assert all(normalize_provider_id(pid) == pid for pid in ids)
    assert adapter.token_fetches == 1


def test_the_message_mapping(tmp_path: Path) -> None:
    with running_fcm(tmp_path) as peer, FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        [result] = adapter.send(
            _messages([_token(1)], link="danang://outage/42", data={"district": "Hải Châu", "kind": "power"})
        )
    assert result.outcome == SendOutcome.SENT, result.error
    [received] = peer.received
    assert received.payload == {
        "token": _token(1),
        "notification": {
            "title": "Thông báo lịch cắt điện",
            "body": "Khu vực của ông/bà mất điện từ 8h đến 11h ngày mai (1).",
        },
        "data": {"district": "Hải Châu", "kind": "power", "link": "danang://outage/42"},
    }


def test_a_429_storm_is_throttled_with_the_peers_retry_after_then_the_same_messages_go(
    tmp_path: Path,
) -> None:
    messages = _messages([_token(i) for i in range(20)])
    with running_fcm(tmp_path) as peer, FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        peer.storm(20, retry_after=9)
        first = adapter.send(messages)
        assert all(isinstance(r.error, Throttled) for r in first), [r.error for r in first]
        assert {r.error.retry_after for r in first if isinstance(r.error, Throttled)} == {9.0}
        assert {r.error.code for r in first if r.error} == {"QUOTA_EXCEEDED"}
        assert peer.received == []
        second = adapter.send(messages)
    assert {r.outcome for r in second} == {SendOutcome.SENT}
    assert sorted(peer.tokens()) == sorted(m.address for m in messages)


def test_the_access_token_is_fetched_once_and_refreshed_near_expiry(tmp_path: Path) -> None:
    clock = ManualClock()
    with (
        running_fcm(tmp_path, FcmBehaviour(expires_in=3600)) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path), clock=clock) as adapter,
    ):
        for call in range(3):
            results = adapter.send(_messages([_token(i) for i in range(30)], start=100 * call))
            assert {r.outcome for r in results} == {SendOutcome.SENT}
        assert len(peer.issued) == 1
        clock.now += 3600 - 400  # still more than the refresh margin before expiry
        adapter.send(_messages([_token(1)]))
        assert len(peer.issued) == 1
        clock.now += 200  # within five minutes of expiry: refreshed before it is used
        adapter.send(_messages([_token(2)]))
        assert len(peer.issued) == 2
        adapter.send(_messages([_token(3)]))
        assert len(peer.issued) == 2
    assert adapter.token_fetches == 2


def test_an_access_token_the_server_turns_down_is_replaced_once(tmp_path: Path) -> None:
    with running_fcm(tmp_path) as peer, FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        adapter.send(_messages([_token(1)]))
        peer.issued.clear()  # the server forgot (revoked) the token the adapter holds
        results = adapter.send(_messages([_token(i) for i in range(10)]))
    assert {r.outcome for r in results} == {SendOutcome.SENT}
    assert len(peer.issued) == 1, "the concurrent 401s share one new token"


def test_a_payload_over_4_kb_is_refused_without_a_request(tmp_path: Path) -> None:
    big = {"notes": "x" * 4000}
    with running_fcm(tmp_path) as peer, FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        results = adapter.send(_messages([_token(1)], data=big) + _messages([_token(2)], start=2))
        assert peer.requests == 1
    assert isinstance(results[0].error, PermanentError)
    assert "4096" in str(results[0].error)
    assert results[1].outcome == SendOutcome.SENT


def test_a_data_value_that_is_not_a_string_is_refused_naming_the_field(tmp_path: Path) -> None:
    with running_fcm(tmp_path) as peer, FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter:
        [result] = adapter.send(_messages([_token(1)], data={"count": 3}))
        assert peer.requests == 0
    assert isinstance(result.error, PermanentError)
    assert "options.data['count']" in str(result.error)


def test_an_invalid_token_is_recipient_rejected(tmp_path: Path) -> None:
    with (
        running_fcm(tmp_path, FcmBehaviour(invalid_tokens=frozenset({"short"}))) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter,
    ):
        [result] = adapter.send(_messages(["short"]))
    assert isinstance(result.error, RecipientRejected), result.error


def test_third_party_auth_error_is_a_configuration_error(tmp_path: Path) -> None:
    with (
        running_fcm(tmp_path, FcmBehaviour(third_party_auth_error=True)) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter,
    ):
        [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, ConfigurationError)
    assert result.error.code == "THIRD_PARTY_AUTH_ERROR"


def test_a_refused_grant_is_a_configuration_error_for_the_window(tmp_path: Path) -> None:
    with (
        running_fcm(tmp_path, FcmBehaviour(refuse_grant=True)) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter,
    ):
        results = adapter.send(_messages([_token(1), _token(2)]))
        assert peer.requests == 0
    assert all(isinstance(r.error, ConfigurationError) and r.error.code == "invalid_grant" for r in results)


def test_a_key_that_is_not_the_accounts_is_refused_at_the_token_endpoint(tmp_path: Path) -> None:
    with running_fcm(tmp_path) as peer:
        stranger = service_account(peer.account.client_email)
        stranger.write(tmp_path / "other.json", token_uri=peer.token_uri)
        settings = adapter_settings(peer, tmp_path, service_account_file=str(tmp_path / "other.json"))
        with FcmAdapter(**settings) as adapter:
            [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, ConfigurationError)


def test_a_wrong_project_is_a_configuration_error(tmp_path: Path) -> None:
    with (
        running_fcm(tmp_path) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path, project_id="someone-else")) as adapter,
    ):
        [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, ConfigurationError)


def test_no_answer_after_the_write_is_outcome_unknown(tmp_path: Path) -> None:
    with (
        running_fcm(tmp_path, FcmBehaviour(silent=True)) as peer,
        FcmAdapter(**adapter_settings(peer, tmp_path, timeout=1.0)) as adapter,
    ):
        [result] = adapter.send(_messages([_token(1)]))
    assert isinstance(result.error, OutcomeUnknown), result.error


def test_an_unreachable_endpoint_is_connection_lost(tmp_path: Path) -> None:
    with running_fcm(tmp_path) as peer:
        settings = adapter_settings(peer, tmp_path, timeout=2.0)
    # The peer has stopped: nothing listens on its port any more.
    with FcmAdapter(**settings) as adapter:
        results = adapter.send(_messages([_token(1), _token(2)]))
    assert all(isinstance(r.error, ConnectionLost) for r in results), [r.error for r in results]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"private_key": None}, "private_key"),
        ({"client_email": ""}, "client_email"),
        ({"private_key": "not a key"}, "private_key"),
    ],
)
def test_a_broken_service_account_file_is_refused_at_open_naming_the_field(
    tmp_path: Path, change: dict[str, object], field: str
) -> None:
    path = service_account().write(tmp_path / "sa.json", token_uri="https://oauth2.googleapis.com/token")
    document = json.loads(path.read_text(encoding="utf-8"))
    document.update(change)
    path.write_text(json.dumps(document), encoding="utf-8")
    adapter = FcmAdapter(project_id="p", service_account_file=str(path))
    with pytest.raises(ConfigurationError, match=field):
        adapter.open()


@pytest.mark.parametrize(("keyword", "value"), [("concurrency", 0), ("timeout", "soon"), ("endpoint", "fcm")])
def test_bad_settings_name_the_field(tmp_path: Path, keyword: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=keyword):
        FcmAdapter(project_id="p", service_account_file=str(tmp_path / "sa.json"), **{keyword: value})  # type: ignore[arg-type]


def test_over_https_http2_is_negotiated_by_alpn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path real FCM takes: TLS, ALPN ``h2``, the token endpoint and ``messages:send`` both over it."""
    with running_fcm(tmp_path, tls=True) as peer:
        assert peer.url.startswith("https://")
        assert peer.server is not None
        assert peer.server.ca_file is not None
        # Trust the throw-away CA: httpx reads SSL_CERT_FILE when its client is made.
        monkeypatch.setenv("SSL_CERT_FILE", str(peer.server.ca_file))
        with FcmAdapter(**adapter_settings(peer, tmp_path)) as adapter:
            results = adapter.send(_messages([_token(i) for i in range(20)]))
        assert peer.http_versions == {"2"}
    assert {r.outcome for r in results} == {SendOutcome.SENT}
    assert len(peer.issued) == 1


def test_the_token_is_shared_again_after_a_close_and_reopen(tmp_path: Path) -> None:
    """The refresh lock belongs to the adapter's loop; a reopened adapter runs a new one."""
    with running_fcm(tmp_path) as peer:
        adapter = FcmAdapter(**adapter_settings(peer, tmp_path))
        for round_ in range(2):
            with adapter:
                adapter.send(_messages([_token(0)], start=100 * round_))
                peer.issued.clear()  # revoked: the window's concurrent 401s wait on one refresh
                results = adapter.send(_messages([_token(i) for i in range(10)], start=100 * round_ + 1))
            assert {r.outcome for r in results} == {SendOutcome.SENT}, [str(r.error) for r in results]
            assert len(peer.issued) == 1


def test_the_token_uri_setting_overrides_the_files(tmp_path: Path) -> None:
    with running_fcm(tmp_path) as peer:
        account = tmp_path / "elsewhere.json"
        peer.account.write(account, token_uri="https://oauth2.googleapis.com/token")
        settings = adapter_settings(
            peer, tmp_path, service_account_file=str(account), token_uri=peer.token_uri
        )
        with FcmAdapter(**settings) as adapter:
            [result] = adapter.send(_messages([_token(1)]))
    assert result.outcome == SendOutcome.SENT, result.error
    assert len(peer.issued) == 1  # the assertion's audience was the overriding URI, which the peer checks
