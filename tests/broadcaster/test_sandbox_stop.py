"""Stopping the sandbox SMSC leaves nothing of smpp34 running, so the process exits cleanly.

smpp34 settles every call's future on a tokio thread under the GIL; a call cancelled from Python still takes
the GIL later on that thread, and at interpreter exit that aborts the process (``Fatal Python error:
PyGILState_Release``, seen during ``make bench``). The in-process test checks the cause deterministically:
after ``stop()`` every smpp34 server call has settled and none was cancelled. The subprocess test checks the
symptom: ``broadcaster sandbox`` with a session that sent messages, stopped with Ctrl-C, exits 0 with no fatal
error, again and again (the abort itself is a rare race, so the repetitions only make it likely to show).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import smpp34
import smpplib.exceptions

from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.channels.test_smsc_sandbox import BareClient
from tests.conftest import free_port
from tests.peers.polling import wait_until

MESSAGES = 20
RUNS = 6

REAL_SERVER = smpp34.Server


class RecordingServer:
    """smpp34.Server, keeping the future of every call made on it (start, next, stop)."""

    futures: ClassVar[list[asyncio.Future[Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._server = REAL_SERVER(*args, **kwargs)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._server, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            future = method(*args, **kwargs)
            RecordingServer.futures.append(future)
            return future

        return call


@pytest.mark.parametrize("relay", [True, False])
def test_stop_leaves_no_smpp34_call_cancelled_or_pending(
    monkeypatch: pytest.MonkeyPatch, relay: bool
) -> None:
    monkeypatch.setattr(RecordingServer, "futures", [])
    monkeypatch.setattr(smpp34, "Server", RecordingServer)
    smsc = SandboxSmsc(behaviour=SmscBehaviour(relay=relay))
    host, port = smsc.start()
    client = BareClient(host, port)
    try:
        for number in range(MESSAGES):
            client.submit(f"8491234{number:04d}", b"Thong bao thu nghiem")
        assert client.read_until(lambda: len(client.delivered) >= MESSAGES)
        assert smsc.wait_until(lambda s: len(s.delivers) >= MESSAGES)
        if not relay:  # smpp34 cannot cut a session; an smpplib client never answers the SMSC's unbind
            client.close()
            assert smsc.wait_until(lambda s: s.bound_sessions == 0)
    finally:
        smsc.stop()
        client.close()
    futures = RecordingServer.futures
    assert len(futures) > MESSAGES  # start, one next() per event, stop
    assert [f for f in futures if f.cancelled()] == []
    assert [f for f in futures if not f.done()] == []


def _sandbox_run(
    workdir: Path, env: dict[str, str], stop: signal.Signals
) -> subprocess.CompletedProcess[str]:
    """``broadcaster sandbox`` with a client session that sent messages and got receipts, then ``stop``."""
    smtp_port, smpp_port = free_port(), free_port()
    command = [str(Path(sys.executable).parent / "broadcaster"), "sandbox", "--smtp-port", str(smtp_port)]
    process = subprocess.Popen(  # noqa: S603  the installed broadcaster script
        [*command, "--smpp-port", str(smpp_port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal, even where this test runs with SIGINT ignored (a background job).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    client: BareClient | None = None
    try:
        client = wait_until(lambda: _connect(smpp_port), timeout=60, what="the sandbox SMSC to accept a bind")
        for number in range(MESSAGES):
            client.submit(f"8491234{number:04d}", b"Thong bao thu nghiem")
        assert client.read_until(lambda: len(client.delivered) >= MESSAGES)
        process.send_signal(stop)  # the session is still bound
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        if client is not None:
            client.close()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _connect(port: int) -> BareClient | None:
    try:
        return BareClient("127.0.0.1", port)
    except (OSError, smpplib.exceptions.ConnectionError):
        return None  # not listening yet


def test_the_sandbox_command_stops_cleanly_on_ctrl_c_or_sigterm_with_a_session_bound(workdir: Path) -> None:
    # The workdir fixture cleared BROADCASTER_* from the environment; the sandbox runs as the workdir's admin.
    env = {**os.environ, "COLUMNS": "200", "LOGNAME": ADMIN_LOGIN, "USER": ADMIN_LOGIN}
    for run in range(RUNS):
        result = _sandbox_run(workdir, env, signal.SIGINT if run % 2 == 0 else signal.SIGTERM)
        assert "Fatal Python error" not in result.stderr, (run, result.stderr)
        assert "Traceback" not in result.stderr, (run, result.stderr)
        assert result.returncode == 0, (run, result.returncode, result.stderr)
        assert "Sandbox SMTP on 127.0.0.1:" in result.stdout
