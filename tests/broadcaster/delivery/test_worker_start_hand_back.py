"""A ``broadcaster worker`` that starts (a restart policy after ``kill -9``) hands back at once what the dead
processes of its machine held: rows never handed over go back to the queue, handed ones are held; a live
process's claims stay. Distributed, nobody else does it before ``stuck_after_seconds`` (600 s)."""

from __future__ import annotations

import os
import socket

from sqlalchemy import update

from broadcaster.db.models import Message
from broadcaster.outbox.handback import hand_back_dead_of_this_host
from broadcaster.vocabulary import MessageStatus
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.test_crash import EMAIL_ONLY, dead_pid
from tests.broadcaster.delivery.workdir_files import citizens

S = MessageStatus


def test_a_starting_worker_hands_back_what_dead_processes_of_its_host_held(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = make_pipeline()
    pipeline.add_contacts(citizens(6))
    run_id = pipeline.start_run(pipeline.approved_campaign(channels=EMAIL_ONLY))
    pipeline.plan(run_id)
    pipeline.enqueuer.chunks.clear()  # the task died with its worker
    ids = [m.id for m in pipeline.messages(run_id)]
    dead, alive = f"{socket.gethostname()}:{dead_pid()}", f"{socket.gethostname()}:{os.getppid()}"
    now = pipeline.clock.now()
    with pipeline.context.sessions.begin() as session:
        for claimer, claimed in ((dead, ids[:4]), (alive, ids[4:])):
            session.execute(
                update(Message)
                .where(Message.id.in_(claimed))
                .values(status=S.SENDING, claimed_by=claimer, claimed_at=now, attempts=1)
            )
        session.execute(update(Message).where(Message.id.in_(ids[:2])).values(handed_at=now))

    with pipeline.context.sessions.begin() as session:
        handed = hand_back_dead_of_this_host(session, now=now)

    assert list(handed) == [dead]
    assert (handed[dead].queued, handed[dead].held) == (2, 2)
    rows = {m.id: m for m in pipeline.messages(run_id)}
    assert [rows[i].status for i in ids] == [S.UNKNOWN] * 2 + [S.QUEUED] * 2 + [S.SENDING] * 2
    assert all(rows[i].hold for i in ids[:2])
    assert pipeline.tick().chunks == 1  # the two never handed over, cut again at once
