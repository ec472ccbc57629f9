"""The kill -9 acceptance's campaign: the sandbox peers in processes of their own, what they received, the
figures per kill, and the loop that kills the embedded engine's workers and waits for recovery."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import Message
from broadcaster.progress import run_progress
from broadcaster.vocabulary import MessageStatus
from channels.email.smtp import SmtpAdapter
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Engine, process_alive
from tests.broadcaster.delivery.test_crash import (
    EMAIL_ONLY,
    SMS_ONLY,
    start,
)
from tests.broadcaster.delivery.workdir_files import citizens
from tests.conftest import free_port
from tests.peers.polling import wait_until

S = MessageStatus
PEOPLE = 2_500  # one SMS and one e-mail each: 5,000 messages
KILLS = 5
TPS = 100.0  # per provider: ~25 s of sending per channel, so five kills spread over the run
SMS_WINDOW = 64  # the bind's PDU window (provider setting ``window``; one bind)
MAIL_WINDOW = SmtpAdapter.capabilities.window  # what one pool child claims and sends at a time
# The gateway records each message's outcome as its last submit_sm_resp arrives, and an answered part keeps
# its PDU window slot until then: what it wrote and has not recorded never exceeds the window.
GATEWAY_BOUND = SMS_WINDOW
THRESHOLDS = {"tick_seconds": 1.0, "orphan_grace_seconds": 2.0, "gateway_lease_seconds": 3.0}
SETTLED = {S.SENT, S.DELIVERED, S.UNKNOWN}
BOTH = {**SMS_ONLY, **EMAIL_ONLY}

SANDBOX = """
import signal
import sys
# Stopped with SIGINT (Ctrl-C); a shell's background job starts with SIGINT ignored, and Python then leaves it so.
signal.signal(signal.SIGINT, signal.default_int_handler)
kind, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "smtp":
    from channels.sandbox.smtp import run_smtp_sandbox
    run_smtp_sandbox(folder=folder, port=port)
else:
    from channels.sandbox.smsc import run_smsc
    run_smsc(port=port, folder=folder)
"""


class Peers:
    """The sandbox SMTP server and SMSC, each in a process of its own, and what they kept in their folders."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.smtp_port, self.smpp_port = free_port(), free_port()
        self.processes = [
            self._start("smtp", self.smtp_port, folder / "mail"),
            self._start("smsc", self.smpp_port, folder / "sms"),
        ]
        for port in (self.smtp_port, self.smpp_port):
            wait_until(partial(listening, port), timeout=30, what=f"a sandbox server on {port}")

    def _start(self, kind: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
        with (self.folder / f"{kind}.log").open("wb") as log:
            return subprocess.Popen(  # noqa: S603  our interpreter running the sandbox script
                [sys.executable, "-c", SANDBOX, kind, str(port), str(folder)], stdout=log, stderr=log
            )

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def sms_parts(self) -> Counter[tuple[str, int]]:
        """(destination, part number) -> submit_sm accepted, from the SMSC's sms.jsonl."""
        path = self.folder / "sms" / "sms.jsonl"
        lines = path.read_text(encoding="utf-8").split("\n")[:-1] if path.exists() else []  # whole lines
        records = [json.loads(line) for line in lines]
        return Counter((r["destination"], r["udh_number"] or 1) for r in records if r["status"] == 0)

    def sms_count(self) -> int:
        return sum(self.sms_parts().values())

    def mail_count(self) -> int:
        return sum(1 for _ in (self.folder / "mail").glob("*.eml"))

    def mail_recipients(self) -> Counter[str]:
        """Recipient -> mails the SMTP server kept for it (the envelope it wrote in front of each .eml)."""
        received: Counter[str] = Counter()
        for path in (self.folder / "mail").glob("*.eml"):
            with path.open("rb") as handle:
                for line in handle:
                    if line.startswith(b"X-Sandbox-Envelope-To:"):
                        to = line.split(b":", 1)[1].decode().split(",")
                        received.update(r.strip().strip("<>") for r in to)
                        break
        return received

    def received(self) -> int:
        return self.sms_count() + self.mail_count()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def campaign_pipeline(make_pipeline: PipelineFactory, peers: Peers) -> Pipeline:
    """A working directory whose providers point at the peers' processes, paced, with short thresholds."""
    pipeline = make_pipeline(sms={"tps": TPS}, mail={"tps": TPS}, delivery=THRESHOLDS)
    point_at(pipeline, peers)
    pipeline.add_contacts(citizens(PEOPLE))
    return pipeline


def point_at(pipeline: Pipeline, peers: Peers) -> None:
    """The working directory's providers send to the peers' processes, not to the pipeline's own servers."""
    config = pipeline.config.read_text(encoding="utf-8")
    config = config.replace(f"port = {pipeline.smtp.port}\n", f"port = {peers.smtp_port}\n")
    config = config.replace(f"port = {pipeline.smsc.port}\n", f"port = {peers.smpp_port}\n")
    pipeline.config.write_text(config, encoding="utf-8")


@dataclass
class Figures:
    kind: str
    window: int  # the in-flight window of what one kill stops (issue 9: 64 per bind, a pool child's window)
    bound: int  # what one kill may hold in this engine: every message written whose outcome is not recorded
    unwritten: int  # what one kill may hold that never reached a peer: the write stamped just before the kill
    progress: Callable[[Peers], int]  # what the peers received of the sending that the kill stops
    expected: int  # what they receive of it in the end (one SMS part and one mail per citizen)
    held: list[list[Message]] = field(default_factory=list)  # per kill
    recovery: list[float] = field(default_factory=list)  # seconds, per kill
    unreceived: list[int] = field(default_factory=list)  # per kill: held that no peer received
    duplicates: int = 0
    awaiting_receipt: int = 0
    seconds: float = 0.0

    def held_counts(self) -> list[int]:
        return [len(held) for held in self.held]

    def line(self) -> str:
        per_kill = ", ".join(
            f"{sum(m.channel == 'sms' for m in held)}+{sum(m.channel == 'email' for m in held)}"
            for held in self.held
        )
        over = sum(n > self.window for n in self.held_counts())
        return (
            f"kill -9 {self.kind}: held per kill (SMS+e-mail) {per_kill} "
            f"(in-flight window {self.window}, kills over it {over}; engine bound {self.bound}); "
            f"held that no peer received {self.unreceived}; recovery s {[round(s, 1) for s in self.recovery]}; "
            f"duplicates at the peers {self.duplicates}; SMS without receipt {self.awaiting_receipt}; "
            f"campaign {self.seconds:.0f} s"
        )


def status_counts(context: AppContext, run_id: int) -> Counter[S]:
    with context.readers() as session:
        rows = session.execute(
            select(Message.status, func.count()).where(Message.run_id == run_id).group_by(Message.status)
        ).all()
    return Counter({S(status): int(count) for status, count in rows})


def claimers(context: AppContext) -> set[str]:
    """Who holds rows in ``sending`` (host:pid)."""
    with context.readers() as session:
        rows = session.scalars(select(Message.claimed_by).where(Message.status == S.SENDING).distinct()).all()
    return {str(by) for by in rows if by}


def dead_claims(context: AppContext) -> set[str]:
    return {by for by in claimers(context) if not process_alive(int(by.rpartition(":")[2]))}


class Campaign:
    """One campaign's run, its kills and the figures."""

    def __init__(self, pipeline: Pipeline, peers: Peers, figures: Figures) -> None:
        self.pipeline = pipeline
        self.peers = peers
        self.figures = figures
        self.context = pipeline.context
        self.started = time.monotonic()

    def recovered(self, run_id: int, received_at_kill: int) -> bool:
        """Nothing claimed by a dead process, and the killed kind of sending moving again (more than it may
        have had in flight reached the peers since the kill), or nothing left to send."""
        if dead_claims(self.context):
            return False
        moved = self.figures.progress(self.peers) - received_at_kill > self.figures.window
        return moved or run_progress(self.context, run_id).finished

    def record(self, run_id: int, held_before: set[int], killed_at: float) -> None:
        self.figures.recovery.append(time.monotonic() - killed_at)
        held = [m for m in self.held(run_id) if m.id not in held_before]
        self.figures.held.append(held)

    def held(self, run_id: int) -> list[Message]:
        return [m for m in self.pipeline.messages(run_id) if m.status == S.UNKNOWN]

    def awaiting_receipt(self, run_id: int) -> int:
        return sum(m.status == S.SENT for m in self.pipeline.messages(run_id, channel="sms"))

    def held_ids(self, run_id: int) -> set[int]:
        return {m.id for m in self.held(run_id)}

    def settle(self, run_id: int) -> None:
        """Every message settled; the peers' figures."""
        self.figures.seconds = time.monotonic() - self.started
        with contextlib.suppress(TimeoutError):  # a receipt sent to a bind as it was killed is lost: a figure
            wait_until(lambda: not self.awaiting_receipt(run_id), timeout=10, what="the last receipts")
        counts = status_counts(self.context, run_id)
        assert sum(counts.values()) == 2 * PEOPLE
        assert set(counts) <= SETTLED, counts
        assert all(m.hold for m in self.held(run_id))
        parts, mails = self.peers.sms_parts(), self.peers.mail_recipients()
        self.figures.duplicates = sum(n - 1 for n in parts.values()) + sum(n - 1 for n in mails.values())
        reached = {destination for destination, _part in parts} | set(mails)
        self.figures.unreceived = [
            sum(peer_address(m) not in reached for m in held) for held in self.figures.held
        ]
        self.figures.awaiting_receipt = self.awaiting_receipt(run_id)
        print(f"\n{self.figures.line()}")
        assert self.figures.duplicates == 0
        assert len(self.figures.held) == KILLS
        assert all(n <= self.figures.bound for n in self.figures.held_counts()), self.figures.line()
        assert all(n <= self.figures.unwritten for n in self.figures.unreceived), self.figures.line()
        # Everything not held reached its peer.
        sent = {peer_address(m) for m in self.pipeline.messages(run_id) if m.status != S.UNKNOWN}
        assert sent <= reached


def peer_address(message: Message) -> str:
    """How the peer names the recipient: the SMSC writes the MSISDN without its +."""
    return message.address.lstrip("+") if message.channel == "sms" else message.address


def all_dead(pids: set[int]) -> bool:
    return not any(process_alive(pid) for pid in pids)


def due(figures: Figures, peers: Peers, kill: int) -> bool:
    """Kill ``kill`` (1…5) comes once the peers have kill/6 of what the killed kind of sending sends."""
    return figures.progress(peers) >= kill * figures.expected // (KILLS + 1)


def kill_workers_in_process(
    pipeline: Pipeline,
    peers: Peers,
    engine: Engine,
    figures: Figures,
    victim: Callable[[], int | None],
) -> list[int]:
    """The embedded engine in this process: five times, kill -9 what ``victim`` picks, mid-send; returns
    the pids killed."""
    campaign = Campaign(pipeline, peers, figures)
    run_id = start(pipeline, PEOPLE, BOTH)
    killed: list[int] = []
    for kill in range(1, KILLS + 1):

        def ready(kill: int = kill) -> int | None:
            return victim() if due(figures, peers, kill) else None

        pid = engine.wait(ready, what=f"kill {kill}: the campaign {kill}/6 through, the victim sending")
        held_before = campaign.held_ids(run_id)
        received, killed_at = figures.progress(peers), time.monotonic()
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        engine.wait(partial(campaign.recovered, run_id, received), what=f"recovery after kill {kill}")
        campaign.record(run_id, held_before, killed_at)
    engine.finish(run_id)
    campaign.settle(run_id)
    return killed
