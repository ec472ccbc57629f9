"""Crashes of the embedded engine, with real processes (issue 9, item 3).

* ``broadcaster run`` or ``send --wait`` killed with SIGKILL: its Celery workers (the main worker, its pool
  children, the SMPP gateway) stop too, and the gateway's bind goes away with them.
* Two gateways of one SMPP account: only one binds; the other waits, says so in its log, and binds once the
  first is gone (killed -9: its lease is taken over at once on the same host).

Processes are found through /proc (Linux), and every wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest

from channels.sandbox.smsc import SmscBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import (
    WAITING,
    Started,
    descendants,
    parent_of,
    process_alive,
    start_cli,
)
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.peers.polling import wait_until

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the process tree in /proc"
)


def engine_is_up(pipeline: Pipeline, pid: int) -> set[int] | None:
    """The engine's workers once the gateway is bound and the main worker has its pool children."""
    workers = descendants(pid)
    grandchildren = {w for w in workers if parent_of(w) != pid}
    return workers if pipeline.smsc.bound_sessions >= 1 and grandchildren else None


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "send --wait"])
def test_the_workers_of_a_killed_engine_stop_with_it(
    make_pipeline: PipelineFactory, processes: Started, command: str
) -> None:
    # No receipts come, so `send --wait` is still waiting for them when it is killed.
    pipeline = make_pipeline(smsc=SmscBehaviour(receipts=False), delivery={"orphan_grace_seconds": 5.0})
    if command == "run":
        engine = start_cli(pipeline, processes, "run", login=ADMIN_LOGIN, log="engine.log")
    else:
        pipeline.add_contacts(citizens(20))
        campaign_id = pipeline.approved_campaign()
        engine = start_cli(pipeline, processes, "send", campaign_id, "--wait", login=EDITOR, log="engine.log")

    workers = wait_until(
        lambda: engine_is_up(pipeline, engine.pid), timeout=60, what=f"the workers of `{command}`"
    )
    processes.strays |= workers
    assert engine.poll() is None, (pipeline.directory / "engine.log").read_text(errors="replace")
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()

    wait_until(
        lambda: not any(process_alive(pid) for pid in workers),
        timeout=45,
        what=f"the end of the workers {sorted(workers)} of the killed `{command}`",
    )
    wait_until(lambda: pipeline.smsc.bound_sessions == 0, timeout=15, what="the gateway's unbind")


@pytest.mark.slow
def test_a_second_gateway_of_one_account_waits_and_never_binds(
    make_pipeline: PipelineFactory, processes: Started
) -> None:
    # A long lease: the second gateway takes over because it sees the first one's process gone, not by expiry.
    pipeline = make_pipeline(delivery={"gateway_lease_seconds": 600.0})
    logs = ("gateway-1.log", "gateway-2.log")
    gateways = [
        start_cli(pipeline, processes, "worker", "--gateway", "sms_main", login=ADMIN_LOGIN, log=log)
        for log in logs
    ]

    def log_of(index: int) -> str:
        return (pipeline.directory / logs[index]).read_text(encoding="utf-8", errors="replace")

    try:
        wait_until(
            lambda: (
                next((i for i in (0, 1) if WAITING in log_of(i)), None) is not None
                and pipeline.smsc.bound_sessions == 1
            ),
            timeout=60,
            what="one gateway bound and the other waiting",
        )
    except TimeoutError as exc:  # say what each gateway was doing
        tails = "\n".join(f"--- {logs[i]}:\n{log_of(i)[-3000:]}" for i in (0, 1))
        exits = [gateway.poll() for gateway in gateways]
        raise AssertionError(
            f"{exc}; bound sessions {pipeline.smsc.bound_sessions}; exit codes {exits}\n{tails}"
        ) from exc
    second = next(i for i in (0, 1) if WAITING in log_of(i))
    first = 1 - second
    assert "sms_main" in log_of(second)
    assert "another gateway of this SMPP account" in log_of(second)
    assert pipeline.smsc.bound_sessions == 1
    assert len(pipeline.smsc.connections) == 1  # the waiting gateway never even connected
    assert gateways[second].poll() is None

    gateways[first].kill()
    gateways[first].wait()

    wait_until(
        lambda: "binding now" in log_of(second) and pipeline.smsc.bound_sessions == 1,
        timeout=30,
        what="the second gateway's bind after the first was killed",
    )
    assert len(pipeline.smsc.connections) == 2
