"""``broadcaster sandbox`` starts the push and social peers of the providers that point at this machine, each
on its endpoint's port, agreeing with the provider's own credentials (made when a key file is missing), so
that the provider's adapter, built from the same settings, sends there."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from broadcaster.sandbox import Sandbox, SandboxPortInUse, SandboxPorts
from channels import registry
from channels.base import OutboundMessage, SendOutcome
from tests.conftest import free_port


def local(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def providers(tmp_path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "app_android": (
            "fcm",
            {
                "project_id": "danang-city-app",
                "service_account_file": str(tmp_path / "keys" / "fcm.json"),
                "endpoint": local(free_port()),
            },
        ),
        "app_ios": (
            "apns",
            {
                "team_id": "DEF123GHIJ",
                "key_id": "ABC123DEFG",
                "private_key_file": str(tmp_path / "keys" / "AuthKey.p8"),
                "topic": "vn.gov.danang.citizen",
                "endpoint": local(free_port()),
            },
        ),
        "fanpage": (
            "facebook",
            {"graph_url": local(free_port()), "page_tokens": {"100000000000143": "EAAG-x"}},
        ),
        "zns": (
            "zalo",
            {"endpoint": local(free_port()), "access_token": "oa-token", "approved_templates": ["231677"]},
        ),
        "real_fcm": (
            "fcm",
            {
                "project_id": "p",
                "service_account_file": "none.json",
                "endpoint": "https://fcm.googleapis.com",
            },
        ),
        "sms_main": ("smpp", {"host": "127.0.0.1", "port": 2775}),
    }


def message(address: str, **options: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id=1, address=address, body="Hồ sơ đã được tiếp nhận.", subject="SKHCN", options=options
    )


ADDRESSES = {
    "app_android": message("fcm-token-0001:APA91b"),
    "app_ios": message("0" * 64),
    "fanpage": message("100000000000143"),
    "zns": message(
        "84905123456", template_id="231677", template_data={"content": "Hồ sơ đã được tiếp nhận."}
    ),
}


def test_each_local_push_and_social_provider_gets_a_peer_its_adapter_sends_to(tmp_path: Path) -> None:
    configured = providers(tmp_path)
    ports = SandboxPorts(smtp=free_port(), smpp=free_port())
    with Sandbox(tmp_path / "sandbox", ports=ports, providers=configured) as sandbox:
        assert set(sandbox.peers) == set(ADDRESSES)  # not the real endpoint, not the SMSC's provider
        for name, outbound in ADDRESSES.items():
            type_name, options = configured[name]
            assert sandbox.peers[name].url == options.get("endpoint", options.get("graph_url"))
            with registry.load_adapter_class(type_name)(**options) as adapter:
                [result] = adapter.send([outbound])
            assert result.outcome == SendOutcome.SENT, (name, result.error)
            assert sandbox.peers[name].received() == 1, name
    # The keys the peers made for the rehearsal stay for the next start, and are used again.
    assert (tmp_path / "keys" / "fcm.json").exists()
    assert (tmp_path / "keys" / "AuthKey.p8").exists()
    with Sandbox(
        tmp_path / "sandbox", ports=SandboxPorts(smtp=free_port(), smpp=free_port()), providers=configured
    ):
        type_name, options = configured["app_android"]
        with registry.load_adapter_class(type_name)(**options) as adapter:
            [result] = adapter.send([ADDRESSES["app_android"]])
        assert result.outcome == SendOutcome.SENT


def test_a_peer_whose_port_is_taken_names_its_provider(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        configured = {"fanpage": ("facebook", {"graph_url": local(port), "page_tokens": {"1": "t"}})}
        sandbox = Sandbox(
            tmp_path, ports=SandboxPorts(smtp=free_port(), smpp=free_port()), providers=configured
        )
        with pytest.raises(SandboxPortInUse, match="fanpage"):
            sandbox.start()
