"""Crash acceptance (issue 9, item 5): kill -9 the SMPP gateway, an e-mail pool child and the parent process,
five times each, during a 5,000-message SMS + e-mail campaign against the sandbox servers.

One campaign per kind of kill (2,500 citizens, one SMS and one e-mail each), paced by the providers' ``tps`` so
the kills spread over the run: kill k comes once the peers have k/6 of what they should receive, while the
victim has rows claimed. The sandbox SMTP server and SMSC run each in a process of their own and keep what
they receive in files; duplicates are counted there, per recipient. The engine's thresholds are seconds-scale
settings (tick, orphan grace, gateway lease); ``stuck_after_seconds`` stays at 600 s, so nothing here comes
back by the stuck sweeper.

* gateway, pool child: the embedded engine (``EmbeddedEngine``) in this process, ticked by the test, as
  ``send --wait`` does; the gateway worker or a pool child of the main worker is killed.
* parent: ``broadcaster send --wait`` in its own process is killed, then each ``broadcaster run`` started to
  finish the campaign, until the sixth one finishes it; the workers of each killed one die with it.

After each kill the test waits for recovery: no row left claimed by a dead process, and the peers received
more than the in-flight window since the kill (or nothing left to send). Figures per kill (held as
``unknown``, recovery time) and per campaign (duplicates at the peers) are printed; run with ``-s``. Asserted:
every message sent, delivered or held; no duplicate at the peers; every message not held reached its peer;
per kill, no more held than the engine may have in flight (``GATEWAY_BOUND``, a pool child's window), and no
more held that no peer got than one write's worth.

    .venv/bin/python -m pytest -q tests/broadcaster/delivery/test_kill9.py -s
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from functools import partial

import pytest
from sqlalchemy import select

from broadcaster.db.models import CampaignRun
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.progress import run_progress
from broadcaster.runtime import worker_specs
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.kill9_campaign import (
    BOTH,
    GATEWAY_BOUND,
    KILLS,
    MAIL_WINDOW,
    PEOPLE,
    SMS_WINDOW,
    Campaign,
    Figures,
    Peers,
    all_dead,
    campaign_pipeline,
    claimers,
    due,
    kill_workers_in_process,
)
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Engine, Started, descendants, process_alive, start_cli
from tests.broadcaster.delivery.test_crash import (
    EMAIL_ONLY,
    MAIL_CONNECTIONS,
    MAIL_RECORDED_AHEAD,
    SMS_WRITE_AT_ONCE,
)
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.peers.polling import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree in /proc"),
]


def test_kill_9_of_the_gateway_five_times(
    make_pipeline: PipelineFactory, peers: Peers, engine_for: Callable[[Pipeline], Engine]
) -> None:
    pipeline = campaign_pipeline(make_pipeline, peers)
    engine = engine_for(pipeline)

    def gateway_sending() -> int | None:
        (gateway,) = (process for spec, process in engine.engine.processes if spec.gateways)
        sending = any(by.endswith(f":{gateway.pid}") for by in claimers(pipeline.context))
        return gateway.pid if sending else None

    figures = Figures(
        "gateway",
        SMS_WINDOW,
        bound=GATEWAY_BOUND,
        unwritten=SMS_WRITE_AT_ONCE,
        progress=Peers.sms_count,
        expected=PEOPLE,
    )
    kill_workers_in_process(pipeline, peers, engine, figures, gateway_sending)

    killed = [n for n in engine.notices if n.startswith("worker gateway-sms_main was killed (SIGKILL)")]
    assert len(killed) == KILLS, engine.notices


@pytest.mark.xfail(
    strict=False,
    raises=TimeoutError,
    reason="known defect, not fixed yet: in about one run in four (the code before the audit issue too) the "
    "run stops moving for over 90 s after the third or fourth pool child is killed, while Celery reports jobs "
    "lost with exit code 0; the rows wait for the sweeper (stuck_after_seconds) — CHANGELOG, Known issues",
)
def test_kill_9_of_a_pool_child_five_times(
    make_pipeline: PipelineFactory, peers: Peers, engine_for: Callable[[Pipeline], Engine]
) -> None:
    pipeline = campaign_pipeline(make_pipeline, peers)
    engine = engine_for(pipeline)

    def pool_child_sending() -> int | None:
        """A process with rows claimed that the engine did not start itself: a child of the main worker."""
        own = {process.pid for _spec, process in engine.engine.processes}
        pids = {int(by.rpartition(":")[2]) for by in claimers(pipeline.context)}
        return next((pid for pid in sorted(pids - own) if process_alive(pid)), None)

    figures = Figures(
        "pool child",
        MAIL_WINDOW,
        bound=MAIL_WINDOW,
        unwritten=MAIL_CONNECTIONS + MAIL_RECORDED_AHEAD,
        progress=Peers.mail_count,
        expected=PEOPLE,
    )
    killed = kill_workers_in_process(pipeline, peers, engine, figures, pool_child_sending)

    died = {int(n.split()[2]) for n in engine.notices if n.startswith("worker process ") and " died; " in n}
    assert died <= set(killed), engine.notices
    # A child killed just after it recorded its last window had nothing to hand back (nor a line to say so).
    assert {pid for pid, held in zip(killed, figures.held, strict=True) if held} <= died, engine.notices


def test_kill_9_of_the_parent_five_times(
    make_pipeline: PipelineFactory, peers: Peers, processes: Started
) -> None:
    """``send --wait`` killed, then four ``broadcaster run`` each killed in turn; a sixth finishes."""
    pipeline = campaign_pipeline(make_pipeline, peers)
    campaign_id = pipeline.approved_campaign(channels=BOTH)
    pool = worker_specs(pipeline.context.settings)[0].concurrency
    figures = Figures(
        "parent",
        SMS_WINDOW + MAIL_WINDOW * pool,
        bound=GATEWAY_BOUND + MAIL_WINDOW * pool,
        unwritten=SMS_WRITE_AT_ONCE + (MAIL_CONNECTIONS + MAIL_RECORDED_AHEAD) * pool,
        progress=Peers.received,
        expected=2 * PEOPLE,
    )
    campaign = Campaign(pipeline, peers, figures)
    engine = start_cli(pipeline, processes, "send", campaign_id, "--wait", login=EDITOR, log="engine-0.log")

    def the_run() -> int | None:
        with pipeline.context.readers() as session:
            return session.scalar(select(CampaignRun.id).where(CampaignRun.campaign_id == campaign_id))

    run_id = wait_until(the_run, timeout=60, what="the run `send --wait` started")
    for kill in range(1, KILLS + 1):
        log = pipeline.directory / f"engine-{kill - 1}.log"

        def ready(kill: int = kill) -> bool:
            return due(figures, peers, kill) and bool(claimers(pipeline.context))

        wait_until(
            ready,
            timeout=120,
            interval=0.1,
            what=f"kill {kill}: the campaign {kill}/6 through, rows being sent",
        )
        assert engine.poll() is None, log.read_text(errors="replace")
        workers = descendants(engine.pid)
        processes.strays |= workers
        held_before = campaign.held_ids(run_id)
        received, killed_at = figures.progress(peers), time.monotonic()
        os.kill(engine.pid, signal.SIGKILL)
        engine.wait()
        wait_until(
            partial(all_dead, workers),
            timeout=30,
            what=f"the end of the workers of the engine killed by kill {kill}",
        )
        engine = start_cli(pipeline, processes, "run", login=ADMIN_LOGIN, log=f"engine-{kill}.log")
        wait_until(
            partial(campaign.recovered, run_id, received),
            timeout=90,
            interval=0.1,
            what=f"recovery after kill {kill} (see engine-{kill}.log)",
        )
        campaign.record(run_id, held_before, killed_at)

    wait_until(
        lambda: run_progress(pipeline.context, run_id).finished,
        timeout=120,
        interval=0.2,
        what=f"run {run_id} settled by the last `broadcaster run`",
    )
    engine.send_signal(signal.SIGTERM)
    engine.wait(timeout=60)
    campaign.settle(run_id)


def test_an_engine_started_after_a_killed_one_sends_the_chunks_its_workers_had_fetched(
    make_pipeline: PipelineFactory,
) -> None:
    """The workers of a killed engine may have fetched chunk tasks they never started, and the SQLite broker
    forgets a task once fetched: the next engine hands those chunks back as it starts, not after
    ``stuck_after_seconds`` (600 s here)."""
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(30))
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=EMAIL_ONLY))
    engine = Engine(pipeline)  # the system clock: the chunk is seconds old, not swept as stuck
    context = engine.context
    lost = RecordingEnqueuer()  # the chunk's task: fetched by a worker that died with its engine
    plan_run(context.sessions, run_id=run_id, settings=context.settings, clock=context.clock, enqueuer=lost)
    assert len(lost.chunks) == 1
    try:
        engine.engine.start()
        engine.wait(lambda: run_progress(context, run_id).finished, what="the run sent", timeout=45)
    finally:
        engine.engine.stop()
        context.close()

    assert pipeline.counts(run_id) == {("email", "sent"): 30}
    assert "1 chunk(s) no worker started handed back to the queue" in engine.notices
