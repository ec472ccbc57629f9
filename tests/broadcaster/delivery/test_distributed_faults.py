"""Crash acceptance of the distributed deployment (issue 16): kill -9 of one worker, of all workers and of the
SMPP gateway, five times each, during one 20,000-message campaign (10,000 citizens, one SMS and one e-mail
each) on PostgreSQL + RabbitMQ, and again on PostgreSQL + Redis.

The deployment is the README's (``deployment.Deployment``): ``beat``, two ``worker``, ``worker --gateway`` and
``worker --inbound``, each a CLI process ("all workers" kills every worker process, beat stays); a kill takes the
process and everything under it, and the test starts the killed ones again, as a restart policy would; a process
that exits by itself meanwhile (beat on a PostgreSQL deadlock, issue 16 defect 1; a worker when the broker goes
away) is started again too, and named in the figures. One campaign per broker carries the fifteen kills of three
kinds (one worker — whichever of the two is sending —, all workers, the gateway): each kind's j-th kill is due
once the peers of its victims' channels (e-mail for a worker, SMS for the gateway, both for all) have j/7 of their
messages, and comes when the processes to kill hold rows being sent; of the kinds due, the one furthest past its
share goes first. The kinds follow their own channels, not each other: the channels are paced alike but the
kills slow them differently, and a kill aimed at a channel that has finished would wait for the run's end. At the
full size every kill must come before the run is over; a smaller campaign is over after a few kills, and the
figures count the late ones. The sandbox SMTP server and SMSC run in processes of their own and keep what they
receive in files: duplicates are counted there, per recipient. Thresholds are seconds-scale settings: tick 1 s,
gateway lease 3 s, ``chunk_max_seconds`` 5 s, ``[broker] visibility_timeout`` 15 s; ``stuck_after_seconds``
stays at 600 s, so nothing here comes back by the stuck sweeper (a restarted worker hands back what the dead
processes of its machine held). ``BROADCASTER_FAULT_PEOPLE`` sets another size (the broker restart's campaign is
a fifth of it, at most 300 citizens).

Asserted: every message sent, delivered or held; no duplicate at the peers (the campaign says ``on_uncertain:
hold``); every receipt applied within a minute, but those the SMSC dropped while no gateway was bound; every
message not held reached its peer; per kill, no more held than the killed processes may have had in flight; no
chunk stays with a dead process longer than the visibility timeout (plus kombu's next look). Figures per kill kind
are printed (run with ``-s``).

The broker itself restarted: a redis-server and a RabbitMQ node of the test's own (``brokers.py``), stopped
cleanly a third of the way through a campaign and started again on the same port and data: every message
ends terminal, none twice at the peers, none held.

    .venv/bin/python -m pytest -q tests/broadcaster/delivery/test_distributed_faults.py -s
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.db.models import CampaignRun, Message
from broadcaster.policies import SECOND_APPROVER_THRESHOLD, set_policy
from broadcaster.progress import run_progress
from broadcaster.vocabulary import MessageStatus
from tests.broadcaster.delivery.brokers import OwnBroker, OwnRabbitMQ, OwnRedis
from tests.broadcaster.delivery.deployment import (
    GATEWAY,
    MAIN_WORKERS,
    ROLES,
    WORKER_PROCESSES,
    ChunkWatch,
    Deployment,
)
from tests.broadcaster.delivery.kill9_campaign import (
    BOTH,
    GATEWAY_BOUND,
    MAIL_WINDOW,
    Peers,
    claimers,
    dead_claims,
    peer_address,
    point_at,
    status_counts,
)
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.broadcaster.delivery.test_crash import MAIL_CONNECTIONS, MAIL_RECORDED_AHEAD, SMS_WRITE_AT_ONCE
from tests.broadcaster.delivery.test_embedded import rabbitmq_url  # noqa: F401  a fixture used below
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens

pytestmark = [
    pytest.mark.slow,
    pytest.mark.services,
    pytest.mark.timeout(1200),  # a hang guard: a 20,000-message campaign with fifteen kills on a busy machine
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree in /proc"),
]

S = MessageStatus
FULL_SIZE = 10000  # citizens: one SMS and one e-mail each, the acceptance's 20,000 messages
PEOPLE = int(os.environ.get("BROADCASTER_FAULT_PEOPLE", str(FULL_SIZE)))
RESTART_PEOPLE = min(PEOPLE // 5, 300)  # the broker restart's campaign: running when the broker stops
ROUNDS = 5
TPS = 100.0  # per provider: 100 s of sending per channel at the least, so fifteen kills spread over the run
VISIBILITY_TIMEOUT = 15.0
# Redis: a dead worker's tasks come back once the timeout passed, at kombu's next look (every tenth of the
# timeout, tasks.celery_config); the watch sees it at its next poll.
CHUNK_WAIT_BOUND = VISIBILITY_TIMEOUT * 1.1 + ChunkWatch.interval
THRESHOLDS = {
    "tick_seconds": 1.0,
    "orphan_grace_seconds": 2.0,
    "gateway_lease_seconds": 3.0,
    "chunk_max_seconds": 5.0,
    "stuck_after_seconds": 600.0,
}
SETTLED = {S.SENT, S.DELIVERED, S.UNKNOWN}
# Receipts the sandbox SMSC may drop: those of a window sent just before each kill that takes the gateway.
RECEIPTS_LOST_AT_MOST = GATEWAY_BOUND * 2 * ROUNDS
RECEIPTS_WAIT_SECONDS = 60.0
MAIL_BOUND = MAIL_WINDOW * WORKER_PROCESSES  # one main worker: a window per pool process
MAIL_UNWRITTEN = (MAIL_CONNECTIONS + MAIL_RECORDED_AHEAD) * WORKER_PROCESSES


@dataclass
class Kind:
    """One kind of kill: which roles, and what it may hold (written, outcome not recorded; of which never
    written to a peer)."""

    name: str
    victims: tuple[tuple[str, ...], ...]  # the roles killed together; one set of them, whichever is sending
    channels: tuple[str, ...]  # what the victims send: their kills follow these channels' progress
    bound: int
    unwritten: int
    held: list[list[Message]] = field(default_factory=list)
    late: int = 0  # kills that came when the run was over (nothing left to hold)
    at: list[int] = field(default_factory=list)  # kill by kill, how far the victims' channels were
    recovery: list[float] = field(default_factory=list)
    unreceived: list[int] = field(default_factory=list)

    def line(self) -> str:
        per_kill = ", ".join(
            f"{sum(m.channel == 'sms' for m in held)}+{sum(m.channel == 'email' for m in held)}"
            for held in self.held
        )
        return (
            f"kill -9 {self.name} at {self.at} of {PEOPLE}: held per kill (SMS+e-mail) {per_kill} "
            f"(bound {self.bound}); "
            f"held that no peer received {self.unreceived}; recovery s {[round(s, 1) for s in self.recovery]}; "
            f"after the run was over {self.late}"
        )


def kinds() -> list[Kind]:
    return [
        Kind(
            "one worker", tuple((worker,) for worker in MAIN_WORKERS), ("email",), MAIL_BOUND, MAIL_UNWRITTEN
        ),
        Kind(
            "all workers",
            (ROLES,),
            ("email", "sms"),
            GATEWAY_BOUND + 2 * MAIL_BOUND,
            SMS_WRITE_AT_ONCE + 2 * MAIL_UNWRITTEN,
        ),
        Kind("gateway", ((GATEWAY,),), ("sms",), GATEWAY_BOUND, SMS_WRITE_AT_ONCE),
    ]


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A redis-server of this test's own on a free port (the machine's is shared)."""
    server = OwnRedis(tmp_path / "redis")
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


def distributed_pipeline(
    make_pipeline: PipelineFactory, peers: Peers, postgres_url: str, broker: str, *, people: int = PEOPLE
) -> Pipeline:
    pipeline = make_pipeline(
        sms={"tps": TPS},
        mail={"tps": TPS},
        delivery=THRESHOLDS,
        database_url=postgres_url,
        broker_url=broker,
        settings_sections={"broker": {"url": broker, "visibility_timeout": VISIBILITY_TIMEOUT}},
    )
    point_at(pipeline, peers)
    pipeline.add_contacts(citizens(people))
    return pipeline


def send(pipeline: Pipeline, processes: Started) -> int:
    """``broadcaster send CAMPAIGN`` as the editor: the run is queued for the workers. A campaign this large
    would need a second approver (policy ``second_approver_threshold``, 5,000 by default): one approval
    is enough here, as the admin says with a reason."""
    with pipeline.context.sessions.begin() as session:
        set_policy(
            session,
            actor=pipeline.approver.login,
            key=SECOND_APPROVER_THRESHOLD,
            text=str(2 * PEOPLE),
            reason="kiểm thử sự cố: một người duyệt",
            clock=pipeline.clock,
        )
    campaign_id = pipeline.approved_campaign(channels=BOTH)
    command = start_cli(pipeline, processes, "send", campaign_id, login=EDITOR, log="send.log")
    assert command.wait(timeout=120) == 0, (pipeline.directory / "send.log").read_text(errors="replace")
    with pipeline.context.readers() as session:
        run_id = session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id))
    assert run_id is not None
    return run_id


def received(peers: Peers, channels: tuple[str, ...]) -> int:
    """How far the slowest of these channels is: what its peer received (each channel has PEOPLE messages)."""
    counts = {"sms": peers.sms_count, "email": peers.mail_count}
    return min(counts[channel]() for channel in channels)


def next_due(
    deployment: Deployment, peers: Peers, turns: list[Kind], run_id: int
) -> tuple[Kind, tuple[str, ...]] | None:
    """The kind to kill now and its victims: of the kinds with kills left whose victims' channels reached their
    next kill's share (j/7 for the j-th) and whose processes hold rows being sent (each kill stops sending in
    flight), the one furthest past its share (its channels would otherwise finish before its last kill). Once
    the run is over, any kind with kills left, counted in ``late``."""
    left = [kind for kind in turns if len(kind.held) < ROUNDS]
    if run_progress(deployment.pipeline.context, run_id).finished:
        left[0].late += 1
        return left[0], left[0].victims[0]
    owners = {int(by.rpartition(":")[2]) for by in claimers(deployment.pipeline.context)}
    due = []
    for kind in left:
        ahead = received(peers, kind.channels) - (len(kind.held) + 1) * PEOPLE // (ROUNDS + 2)
        sending = [roles for roles in kind.victims if owners & deployment.pids(*roles)]
        if ahead >= 0 and sending:
            due.append((ahead, kind, sending[0]))
    if not due:
        return None
    _ahead, kind, roles = max(due, key=lambda found: found[0])
    return kind, roles


def wait_for_next_kill(
    deployment: Deployment, peers: Peers, turns: list[Kind], run_id: int, kill: int
) -> tuple[Kind, tuple[str, ...]]:
    found: list[tuple[Kind, tuple[str, ...]]] = []

    def due() -> bool:
        kill = next_due(deployment, peers, turns, run_id)
        if kill is not None:
            found.append(kill)
        return kill is not None

    deployment.wait(
        due, timeout=300, what=f"kill {kill}: a kind's channels through its next share, its victims sending"
    )
    return found[-1]


def held(pipeline: Pipeline, run_id: int) -> list[Message]:
    return [m for m in pipeline.messages(run_id) if m.status == S.UNKNOWN]


def kill_during_a_campaign(pipeline: Pipeline, peers: Peers, processes: Started) -> None:
    deployment = Deployment(pipeline, processes)
    deployment.start()
    run_id = send(pipeline, processes)
    turns = kinds()
    started = time.monotonic()
    with ChunkWatch(pipeline) as watch:
        for kill in range(1, ROUNDS * len(turns) + 1):
            kind, roles = wait_for_next_kill(deployment, peers, turns, run_id, kill)
            kind.at.append(received(peers, kind.channels))
            before = {m.id for m in held(pipeline, run_id)}
            so_far, killed_at = peers.received(), time.monotonic()
            deployment.kill(*roles)
            deployment.start(*roles)

            def recovered(so_far: int = so_far, bound: int = kind.bound) -> bool:
                if dead_claims(pipeline.context):
                    return False
                moved = peers.received() - so_far > bound
                return moved or run_progress(pipeline.context, run_id).finished

            deployment.wait(recovered, timeout=180, what=f"recovery after kill {kill} ({kind.name})")
            kind.recovery.append(time.monotonic() - killed_at)
            kind.held.append([m for m in held(pipeline, run_id) if m.id not in before])
        deployment.wait(
            lambda: run_progress(pipeline.context, run_id).finished,
            timeout=300,
            what=f"run {run_id} settled",
        )
        # The SMSC drops a receipt that comes while no gateway is bound (a kill's few seconds); every other one
        # is applied soon after, whoever was killed meanwhile: well within the appliers' lease ttl (2 min),
        # which a killed applier's lease no longer waits for.
        deployment.wait(
            lambda: run_progress(pipeline.context, run_id).pending_receipts <= RECEIPTS_LOST_AT_MOST,
            timeout=RECEIPTS_WAIT_SECONDS,
            what=f"the receipts of run {run_id} applied",
        )
        longest = watch.longest()
    seconds = time.monotonic() - started
    print(f"\n{deployment.state()}")  # the end state, as a wait that gives up would show it
    deployment.stop()
    print(f"\nexited by themselves and started again: {deployment.exits or 'none'}")
    settle(pipeline, peers, run_id, turns, longest=longest, seconds=seconds)


def settle(
    pipeline: Pipeline, peers: Peers, run_id: int, turns: list[Kind], *, longest: float, seconds: float
) -> None:
    counts = status_counts(pipeline.context, run_id)
    parts, mails = peers.sms_parts(), peers.mail_recipients()
    duplicates = sum(n - 1 for n in parts.values()) + sum(n - 1 for n in mails.values())
    reached = {destination for destination, _part in parts} | set(mails)
    for kind in turns:
        kind.unreceived = [sum(peer_address(m) not in reached for m in held) for held in kind.held]
        print(f"\n{kind.line()}")
    waiting = run_progress(pipeline.context, run_id).pending_receipts
    print(
        f"SMS sent whose receipt never came (the SMSC drops those while no gateway is bound): {waiting}; "
        f"statuses {dict(counts)}; duplicates at the peers {duplicates}; longest a chunk stayed with a dead "
        f"process {longest:.1f} s (visibility timeout {VISIBILITY_TIMEOUT} s, bound {CHUNK_WAIT_BOUND:.2f} s); campaign {seconds:.0f} s"
    )
    assert sum(counts.values()) == 2 * PEOPLE
    assert set(counts) <= SETTLED, counts
    assert all(m.hold for m in held(pipeline, run_id))
    assert duplicates == 0
    for kind in turns:
        assert len(kind.held) == ROUNDS, kind.line()
        assert all(len(h) <= kind.bound for h in kind.held), kind.line()
        assert all(n <= kind.unwritten for n in kind.unreceived), kind.line()
        if PEOPLE >= FULL_SIZE:  # a smaller campaign (CI's) is over after the first kills' recoveries
            assert kind.late == 0, kind.line()  # every kill came while the campaign was sending
    sent = {peer_address(m) for m in pipeline.messages(run_id) if m.status != S.UNKNOWN}
    assert sent <= reached  # everything not held reached its peer
    assert longest <= CHUNK_WAIT_BOUND


def test_kill_9_of_workers_and_gateway_on_postgresql_and_rabbitmq(
    make_pipeline: PipelineFactory,
    peers: Peers,
    postgres_url: str,
    rabbitmq_url: str,  # noqa: F811  the fixture imported above
    processes: Started,  # last: its processes stop before the database and the broker go
) -> None:
    pipeline = distributed_pipeline(make_pipeline, peers, postgres_url, rabbitmq_url)
    kill_during_a_campaign(pipeline, peers, processes)


def test_kill_9_of_workers_and_gateway_on_postgresql_and_redis(
    make_pipeline: PipelineFactory,
    peers: Peers,
    postgres_url: str,
    redis_url: str,
    processes: Started,  # last: its processes stop before the database and the broker go
) -> None:
    pipeline = distributed_pipeline(make_pipeline, peers, postgres_url, redis_url)
    kill_during_a_campaign(pipeline, peers, processes)


@pytest.mark.parametrize("broker_kind", [OwnRedis, OwnRabbitMQ], ids=["redis", "rabbitmq"])
def test_the_broker_restarted_mid_campaign(
    make_pipeline: PipelineFactory,
    peers: Peers,
    postgres_url: str,
    tmp_path: Path,
    broker_kind: type[OwnBroker],
    processes: Started,
) -> None:
    broker = broker_kind(tmp_path / "broker")
    broker.start()
    try:
        pipeline = distributed_pipeline(make_pipeline, peers, postgres_url, broker.url, people=RESTART_PEOPLE)
        deployment = Deployment(pipeline, processes)
        deployment.start()
        run_id = send(pipeline, processes)
        deployment.wait(
            lambda: peers.received() >= 2 * RESTART_PEOPLE // 3,
            timeout=300,
            what="a third of the campaign through",
        )
        broker.stop()
        stopped_at = peers.received()
        broker.start()
        deployment.wait(
            lambda: run_progress(pipeline.context, run_id).finished,
            timeout=300,
            what=f"run {run_id} settled after the {broker.name} restart",
        )
        deployment.stop()
    finally:
        for process in processes:  # before the broker goes: nothing keeps reconnecting to a dead port
            if process.poll() is None:
                process.kill()
        broker.kill()
    counts = status_counts(pipeline.context, run_id)
    parts, mails = peers.sms_parts(), peers.mail_recipients()
    duplicates = sum(n - 1 for n in parts.values()) + sum(n - 1 for n in mails.values())
    print(
        f"\n{broker.name} restarted at {stopped_at} received: statuses {dict(counts)}, duplicates {duplicates}, "
        f"restarted by the test as a restart policy would: {deployment.exits or 'none'}"
    )
    assert sum(counts.values()) == 2 * RESTART_PEOPLE
    assert set(counts) <= {S.SENT, S.DELIVERED}, counts
    assert duplicates == 0
    reached = {destination for destination, _part in parts} | set(mails)
    assert {peer_address(m) for m in pipeline.messages(run_id)} <= reached
