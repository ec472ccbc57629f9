"""A worker killed mid-send (issue 9, items 1-2): only what it may have written is held, the rest goes back to
the queue at once, and the embedded supervisor restarts it and says so in one line.

The real path: ``EmbeddedEngine`` (Celery worker processes on the SQLite broker, the tick in this process)
against the sandbox SMSC and SMTP server; a worker is killed with SIGKILL while it sends. Afterwards every
message is settled, nothing the peers never received is held, and nothing reached a peer twice.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from broadcaster.cli.common import console
from broadcaster.db.models import CampaignRun, Message
from broadcaster.errors import UserError
from broadcaster.progress import wait_for_run
from broadcaster.runtime import MAX_WORKER_EXITS, EmbeddedEngine, WorkerSpec
from broadcaster.tasks import CeleryEnqueuer
from broadcaster.vocabulary import MessageStatus, RunStatus
from channels.email.smtp import SmtpAdapter
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Engine
from tests.broadcaster.delivery.test_operator_commands import Cli
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.polling import wait_until

S = MessageStatus
SETTLED = {S.SENT, S.DELIVERED, S.UNKNOWN}
SMS_ONLY = {"sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True}}
EMAIL_ONLY = {"email": {"template": "email/thu-nghiem", "provider": "mail"}}
# A handed-over stamp is committed just before the bytes go: a kill between the two holds what one write
# carries (an SMPP bind's window of submit_sm; for e-mail, one mail per SMTP connection plus the few the
# adapter records ahead with it), and never more.
SMS_WRITE_AT_ONCE = 64
MAIL_CONNECTIONS = 4
MAIL_RECORDED_AHEAD = 4 * MAIL_CONNECTIONS  # SmtpAdapter.record_ahead


def start(pipeline: Pipeline, people: int, channels: dict[str, Any]) -> int:
    pipeline.add_contacts(citizens(people))
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=channels))
    CeleryEnqueuer().plan_run(run_id)
    return run_id


def claimed_rows(pipeline: Pipeline, *, handed: bool) -> list[tuple[str, int]]:
    """(claimed_by, id) of the rows in sending, handed over or not."""
    with pipeline.context.readers() as session:
        handed_at = Message.handed_at.is_not(None) if handed else Message.handed_at.is_(None)
        rows = session.execute(
            select(Message.claimed_by, Message.id).where(Message.status == S.SENDING, handed_at)
        ).all()
    return [(str(by), int(mid)) for by, mid in rows]


def run_status(pipeline: Pipeline, run_id: int) -> RunStatus:
    with pipeline.context.readers() as session:
        run = session.get(CampaignRun, run_id)
        assert run is not None
        return run.status


def assert_settled(pipeline: Pipeline, run_id: int, people: int) -> list[Message]:
    """Every message settled; returns the held ones (the run's status says whether there are any)."""
    messages = pipeline.messages(run_id)
    assert len(messages) == people
    assert {m.status for m in messages} <= SETTLED, Counter(m.status for m in messages)
    held = [m for m in messages if m.status == S.UNKNOWN]
    assert all(m.hold for m in held)
    assert run_status(pipeline, run_id) == (RunStatus.COMPLETED_WITH_HELD if held else RunStatus.COMPLETED)
    return held


@pytest.mark.slow
def test_a_killed_gateway_is_restarted_and_holds_only_what_reached_the_smsc(
    make_pipeline: PipelineFactory, engine_for: Callable[[Pipeline], Engine]
) -> None:
    """What ``send --wait`` does (``wait_for_run``) while the gateway is killed: one line on the progress
    output, no traceback, and the run settles."""
    people = 400
    pipeline = make_pipeline(sms={"tps": 100.0})  # paced, so the gateway is killed with most still to send
    engine = engine_for(pipeline)
    run_id = start(pipeline, people, SMS_ONLY)
    gateway = next(process for spec, process in engine.engine.processes if spec.gateways)

    def kill_while_sending() -> None:
        wait_until(
            lambda: len(pipeline.smsc.accepted) >= 40 and claimed_rows(pipeline, handed=False),
            timeout=90.0,
            what="the gateway sending, with claimed rows it has not written yet",
        )
        gateway.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_while_sending)
    killer.start()
    with console.capture() as captured:
        wait_for_run(engine.engine, run_id, console=console, receipt_timeout=1.0, interval=0.1)
    killer.join()

    output = " ".join(captured.get().split())  # as one line, however the console wrapped it
    assert output.count("worker gateway-sms_main was killed") == 1, output  # said once
    assert f"worker process {gateway.pid} " not in output
    back = re.search(
        r"gateway-sms_main was killed \(SIGKILL\); restarted it; (\d+) message\(s\) back", output
    )
    assert back is not None, output
    assert int(back.group(1)) > 0, output  # claimed, never written: not held
    held = assert_settled(pipeline, run_id, people)
    received = Counter(record.destination for record in pipeline.smsc.accepted)
    assert max(received.values()) == 1, "an SMS reached the SMSC twice"
    # Held: messages the SMSC has (the gateway wrote them and died before recording the answer), but for
    # at most the one write that was recorded and not yet out when the kill came.
    assert len({m.address.lstrip("+") for m in held} - set(received)) <= SMS_WRITE_AT_ONCE
    sent = {m.address.lstrip("+") for m in pipeline.messages(run_id) if m.status != S.UNKNOWN}
    assert sent <= set(received)  # and all the others were sent, once


@pytest.mark.slow
def test_a_killed_pool_child_hands_back_its_rows_at_once(
    make_pipeline: PipelineFactory, engine_for: Callable[[Pipeline], Engine]
) -> None:
    people = 600
    pipeline = make_pipeline()
    engine = engine_for(pipeline)
    run_id = start(pipeline, people, EMAIL_ONLY)
    own = {process.pid for _spec, process in engine.engine.processes}

    def child_sending() -> int | None:
        """A pool child (not a worker the engine started) with written and unwritten rows in sending."""
        written = {by for by, _id in claimed_rows(pipeline, handed=True)}
        unwritten = {by for by, _id in claimed_rows(pipeline, handed=False)}
        pids = {int(by.rpartition(":")[2]) for by in written & unwritten}
        return next(iter(pids - own), None)

    victim = engine.wait(
        lambda: len(pipeline.smtp.received) >= 20 and child_sending(), what="a pool child mid-window"
    )
    os.kill(victim, signal.SIGKILL)

    engine.finish(run_id)  # not after stuck_after_seconds (600 s here): at once

    assert any(n.startswith(f"worker process {victim} died; ") for n in engine.notices), engine.notices
    held = assert_settled(pipeline, run_id, people)
    received = Counter(r for mail in pipeline.smtp.received for r in mail.rcpt_tos)
    assert max(received.values()) == 1, "a mail reached the relay twice"
    # Held: mails whose body was written, but for those recorded and not yet out when the kill came.
    assert len({m.address for m in held} - set(received)) <= MAIL_CONNECTIONS + MAIL_RECORDED_AHEAD
    assert {m.address for m in pipeline.messages(run_id) if m.status != S.UNKNOWN} <= set(received)


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(done.stdout)


def test_the_supervisor_hands_back_a_dead_workers_rows_and_the_run_waits_for_an_operator(
    make_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: a dead worker's claim as the database shows it; the supervisor's hand-back, then the run's
    status ``completed_with_held`` in ``status`` until an operator drops the held ones."""
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(6))
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=EMAIL_ONLY))
    pipeline.plan(run_id)
    pipeline.enqueuer.chunks.clear()  # the worker that took the chunk died with its task
    ids = [m.id for m in pipeline.messages(run_id)]
    dead = f"{socket.gethostname()}:{dead_pid()}"
    with pipeline.context.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids[:4]))
            .values(status=S.SENDING, claimed_by=dead, claimed_at=pipeline.clock.now(), attempts=1)
        )
        session.execute(update(Message).where(Message.id.in_(ids[:2])).values(handed_at=pipeline.clock.now()))

    engine = EmbeddedEngine(pipeline.context, config=pipeline.config, log_dir=pipeline.directory / "logs")
    engine.check_workers()  # no worker processes of its own: only the dead claimer is found

    pid = dead.rpartition(":")[2]
    assert engine.take_notices() == [
        f"worker process {pid} died; 2 message(s) back in the queue, 2 held as unknown (may have been sent)"
    ]
    pipeline.tick()  # the chunk's unsent rows and the never-handed ones are cut into new chunks at once
    pipeline.drain()
    rows = {m.id: m for m in pipeline.messages(run_id)}
    assert [rows[i].status for i in ids] == [S.UNKNOWN] * 2 + [S.SENT] * 4
    assert all(rows[i].attempts == 1 for i in ids[2:])  # a claim never handed over is no attempt
    assert len(pipeline.smtp.received) == 4

    cli = Cli(pipeline, monkeypatch)
    pipeline.tick()
    assert run_status(pipeline, run_id) == RunStatus.COMPLETED_WITH_HELD
    assert cli.json("status", pipeline_campaign(pipeline))["runs"][0]["status"] == "completed_with_held"
    assert "completed, some held" in cli("status", pipeline_campaign(pipeline))  # the run status in words
    cli("messages", "drop", "--run", str(run_id), "--reason", "đã gửi qua kênh khác")
    pipeline.tick()
    assert run_status(pipeline, run_id) == RunStatus.COMPLETED


def pipeline_campaign(pipeline: Pipeline) -> str:
    (message,) = pipeline.messages()[:1]
    assert message.campaign_id is not None
    return message.campaign_id


def test_rate_pacing_happens_before_the_claim(
    make_pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a window waits for rate-limit tokens, none of its rows sits claimed: the dispatcher takes the
    tokens first, then claims. Only the window on the wire is claimed meanwhile."""
    pipeline = make_pipeline(mail={"tps": 1000.0})
    pipeline.add_contacts(citizens(120))
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=EMAIL_ONLY))
    claimed_while_pacing: list[int] = []

    def pacer(self: Any, provider: str, tps: float) -> Callable[[int], int]:
        def take(wanted: int) -> int:
            with pipeline.context.readers() as session:
                claimed = session.scalars(select(Message.id).where(Message.status == S.SENDING)).all()
            claimed_while_pacing.append(len(claimed))
            return wanted

        return take

    monkeypatch.setattr("broadcaster.outbox.dispatch.Dispatcher._pacer", pacer)
    pipeline.plan(run_id)
    pipeline.drain()

    assert pipeline.counts(run_id) == {("email", "sent"): 120}
    # Tokens for 50, 50 and the last 20, each taken while at most the window on the wire was claimed.
    window = SmtpAdapter.capabilities.window  # 50: the e-mail adapter takes one window at a time
    assert claimed_while_pacing == [0, window, window], claimed_while_pacing


def test_a_worker_that_keeps_exiting_stops_the_engine_with_a_clear_error(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed workers are restarted whatever happens; one that exits by itself (a broken configuration) is
    restarted a few times, then the engine stops and says where its log is."""

    def exiting(self: EmbeddedEngine, spec: WorkerSpec) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        process.wait()
        return process

    monkeypatch.setattr(EmbeddedEngine, "_spawn", exiting)
    engine = EmbeddedEngine(pipeline.context, config=pipeline.config, log_dir=pipeline.directory / "logs")
    engine.start()
    for _ in range(MAX_WORKER_EXITS):
        engine.check_workers()
    notices = engine.take_notices()[-3:]  # the last round: every worker (the inbound one last) restarted
    for name, notice in zip(("main", "gateway-sms_main", "inbound"), notices, strict=True):
        assert notice.startswith(f"worker {name} exited with code 3; restarted it; "), notices

    with pytest.raises(UserError, match=r"worker main keeps exiting \(code 3\); see .*worker-main\.log"):
        engine.check_workers()
