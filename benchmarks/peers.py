"""The peers the benchmark sends to, each in its own process on 127.0.0.1: an SMTP sink and the sandbox SMSC.

E-mail goes to postfix's ``smtp-sink`` (the sandbox aiosmtpd server if it is missing, with a note: it is 2-3×
slower as a sink); SMS to the sandbox SMSC on smpp34. Every child process is stopped on the way out.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.processes import free_port, wait_port

__all__ = ["Peer", "email_peer", "sms_peer"]


@dataclass
class Peer:
    kind: str
    port: int
    note: str = ""
    pid: int | None = None  # the peer's own process (its peak RSS is read from /proc)


def _serve_aiosmtpd(port: int, folder: str, ready: MpEvent, stop: MpEvent) -> None:
    from channels.sandbox.smtp import SandboxSmtpServer

    with SandboxSmtpServer(Path(folder), "127.0.0.1", port):
        ready.set()
        stop.wait()


def _serve_smsc(
    port: int, receipt_delay: float | None, keep_records: bool, ready: MpEvent, stop: MpEvent
) -> None:
    from channels.sandbox.smsc import SandboxSmsc, SmscBehaviour

    # relay=False: clients talk to smpp34 directly (the relay only adds idle cut-offs we do not test here).
    behaviour = SmscBehaviour(
        receipts=receipt_delay is not None,
        receipt_delay=receipt_delay or 0.0,
        relay=False,
        keep_records=keep_records,
    )
    with SandboxSmsc(host="127.0.0.1", port=port, behaviour=behaviour):
        ready.set()
        stop.wait()


@contextmanager
def child_server(target: Callable[..., None], *args: Any, port: int) -> Iterator[int]:
    """``target`` serving ``port`` in a spawned process of its own; yields that process's pid."""
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=target, args=(port, *args, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{target.__name__} did not start within 30 s")
        wait_port(port)
        assert process.pid is not None  # started
        yield process.pid
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


def smtp_sink_path() -> str | None:
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/smtp-sink") if os.access(p, os.X_OK)), None
    )


@contextmanager
def email_peer(scratch: Path, console: Console) -> Iterator[Peer]:
    port = free_port()
    sink = smtp_sink_path()
    if sink is None:
        note = (
            "smtp-sink not found (install it with `apt-get install postfix`; only the binary is used): "
            "falling back to the sandbox aiosmtpd server, 2.3-2.9x slower as a sink (docs/peers.md)"
        )
        console.print(f"[yellow]{note}[/]")
        with child_server(_serve_aiosmtpd, str(scratch / "mail"), port=port):
            yield Peer(kind="aiosmtpd", port=port, note=note)
        return
    # As root, smtp-sink must drop privileges (docs/peers.md "Environment"); 1000 = listen backlog.
    command = [sink, *(["-u", "nobody"] if os.geteuid() == 0 else []), f"127.0.0.1:{port}", "1000"]
    # The sink found on PATH by shutil.which, with our own arguments.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        wait_port(port)
        yield Peer(kind="smtp-sink", port=port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def sms_peer(receipt_delay: float | None, *, keep_records: bool = True) -> Iterator[Peer]:
    """The sandbox SMSC; ``keep_records=False`` for runs of millions (its in-memory records grow with them)."""
    port = free_port()
    receipts = "no receipts" if receipt_delay is None else f"receipts after {receipt_delay:g} s"
    with child_server(_serve_smsc, receipt_delay, keep_records, port=port) as pid:
        yield Peer(kind=f"sandbox SMSC (smpp34, {receipts})", port=port, pid=pid)
