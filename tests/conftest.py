"""Shared test helpers: free ports and the service switch (BROADCASTER_REQUIRE_SERVICES)."""

from __future__ import annotations

import os
import socket

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (pass it to the server explicitly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def services_required() -> bool:
    return os.environ.get("BROADCASTER_REQUIRE_SERVICES") == "1"


def service_unavailable(name: str, reason: str) -> None:
    """Skip with a reason on a machine without the service, fail in CI where it must be there."""
    message = f"{name} is not reachable: {reason}"
    if services_required():
        pytest.fail(message + " (BROADCASTER_REQUIRE_SERVICES=1)")
    pytest.skip(message)
