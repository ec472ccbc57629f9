"""Shared test helpers: free ports and the service switch (BROADCASTER_REQUIRE_SERVICES)."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import typer.main
import typer.testing
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

# Helper modules that assert on the tests' behalf: pytest explains their failed asserts as in test modules.
pytest.register_assert_rewrite(
    "tests.broadcaster.delivery.pipeline", "tests.broadcaster.delivery.kill9_campaign"
)

POSTGRES_URL = os.environ.get("BROADCASTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


_PORTS_OUTSIDE_EPHEMERAL = [p for p in range(20000, 32768) if p not in _ephemeral_ports()]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (pass it to the server explicitly).

    Chosen outside the kernel's ephemeral range: a port that bind(0) hands out can be given next to an
    outgoing connection (to PostgreSQL, Redis...) before the server binds it; these never are.
    """
    pool = _PORTS_OUTSIDE_EPHEMERAL
    for port in random.sample(pool, min(200, len(pool))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a machine whose ephemeral range is wide
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


@pytest.fixture(scope="session", autouse=True)
def cli_commands_built_once() -> Iterator[None]:
    """typer's ``CliRunner.invoke(app, ...)`` turns the app into click commands on every call (about a tenth
    of a second for ``broadcaster``, and the tests invoke it thousands of times); the apps do not change during
    a run, so each is built once. Click commands keep no state between invocations."""
    built: dict[int, tuple[typer.Typer, Any]] = {}

    def built_once(app: typer.Typer) -> Any:
        if id(app) not in built:
            built[id(app)] = (app, typer.main.get_command(app))  # the app is kept: its id is never reused
        return built[id(app)][1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", built_once)
        yield


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database, first on the ``search_path``; dropped afterwards."""
    from broadcaster.db.engine import make_engine

    admin = make_engine(POSTGRES_URL)
    schema = f"bc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        service_unavailable("PostgreSQL", f"{POSTGRES_URL}: {exc.orig}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
