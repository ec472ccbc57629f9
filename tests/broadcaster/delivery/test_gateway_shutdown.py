"""A gateway worker told to stop (SIGTERM, Celery's warm shutdown) stops within its window's answer timeout
(issue 16, defect 5): idle, and in the middle of a long chunk, whose rows not yet on the wire go back to the
queue instead of being sent to the chunk's end while the shutdown waits.

Before, an idle gateway waited up to 10 s for Celery's event loop to notice, then seconds more for the
interpreter's teardown; a busy one sent its chunk to the end (up to ``chunk_max_seconds``).
"""

from __future__ import annotations

import signal
import subprocess

import pytest
from sqlalchemy import func, select

from broadcaster.db.models import Message
from broadcaster.tasks import CeleryEnqueuer, configure
from broadcaster.vocabulary import MessageStatus
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.broadcaster.delivery.test_sms_delivery import SHORT_SMS, sms_only
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.polling import wait_until

pytestmark = pytest.mark.slow

PDU_TIMEOUT = 5.0  # the test providers' pdu_timeout (workdir_files.py): the in-flight window's answer timeout
# Beyond the window's answers: writing the windows already handed to the adapter (at most two of 64 messages
# at 40/s: 3.2 s; the adapter paces a window and does not abandon it half-written),
# Celery stopping its consumer and the process ending, on a loaded CI machine.
STOP_ALLOWANCE = 8.0
STOP_BOUND = PDU_TIMEOUT + STOP_ALLOWANCE


def counted(pipeline: Pipeline, *statuses: MessageStatus) -> int:
    with pipeline.context.readers() as session:
        query = select(func.count()).select_from(Message).where(Message.status.in_(statuses))
        return int(session.scalar(query) or 0)


def started_gateway(pipeline: Pipeline, processes: Started) -> subprocess.Popen[bytes]:
    gateway = start_cli(
        pipeline, processes, "worker", "--gateway", "sms_main", login=ADMIN_LOGIN, log="gateway.log"
    )
    wait_until(lambda: pipeline.smsc.bound_sessions == 1, timeout=60, what="the gateway's bind")
    return gateway


def stopped_within_bound(pipeline: Pipeline, gateway: subprocess.Popen[bytes]) -> int:
    gateway.send_signal(signal.SIGTERM)
    try:
        return gateway.wait(timeout=STOP_BOUND)
    except subprocess.TimeoutExpired:
        log = (pipeline.directory / "gateway.log").read_text(encoding="utf-8", errors="replace")
        raise AssertionError(
            f"the gateway was still running {STOP_BOUND} s after SIGTERM\n{log[-3000:]}"
        ) from None


def test_an_idle_gateway_stops_within_the_window_timeout(
    make_pipeline: PipelineFactory, processes: Started
) -> None:
    pipeline = make_pipeline()
    gateway = started_gateway(pipeline, processes)

    assert stopped_within_bound(pipeline, gateway) == 0
    wait_until(lambda: pipeline.smsc.bound_sessions == 0, what="the unbind")


def test_a_gateway_stopped_mid_chunk_returns_the_rest_to_the_queue(
    make_pipeline: PipelineFactory, processes: Started
) -> None:
    # 40 SMS a second: the chunk of 1,200 would take 30 s to send to its end. An SMPP window of 16 makes the
    # dispatcher's windows 64 messages (4 SMPP windows a call), 1.6 s each at that rate.
    pipeline = make_pipeline(sms={"tps": 40, "window": 16, "chunk_size": 2000})
    pipeline.add_contacts(citizens(1200))
    run_id = pipeline.start_run(sms_only(pipeline, text=SHORT_SMS, unaccented=True))
    pipeline.plan(run_id)
    gateway = started_gateway(pipeline, processes)
    configure(pipeline.context.settings)
    for chunk_id, queue in pipeline.enqueuer.chunks:
        CeleryEnqueuer().dispatch_chunk(chunk_id, queue=queue)
    wait_until(
        lambda: counted(pipeline, MessageStatus.SENT, MessageStatus.DELIVERED) >= 20,
        timeout=60,
        what="the chunk under way",
    )

    assert stopped_within_bound(pipeline, gateway) == 0
    assert counted(pipeline, MessageStatus.SENDING) == 0  # the windows on the wire were answered and recorded
    assert counted(pipeline, MessageStatus.QUEUED) > 0  # the rest went back to the queue, unsent
