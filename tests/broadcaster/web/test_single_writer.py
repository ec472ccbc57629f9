"""The single-message writer process of ``serve --workers N`` on SQLite (``broadcaster.web.single_writer``):
the workers hand it their batches over a Unix socket; a worker that cannot reach it answers 503 and writes
nothing; ``serve`` starts it again when it dies."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import ApiKey, Message
from broadcaster.outbox.single import Refused, SingleRequest, VersionCache, approved_version, prepare_single
from broadcaster.web.app import create_app
from broadcaster.web.single_batches import Stored, Submission
from broadcaster.web.single_writer import WRITER_KEY_ENV, RemoteWrite, WriterProcess, _sendable
from tests.broadcaster.web.api.single_messages import single_key, write_approved
from tests.peers.polling import wait_until

__all__ = ["single_key", "write_approved"]  # fixtures used here

SMS = "Ho so {{ message.ma }} da duoc tiep nhan."


@pytest.fixture
def writer(workdir: Path) -> Iterator[WriterProcess]:
    process = WriterProcess(workdir / "broadcaster.toml")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def api(context: AppContext, writer: WriterProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app as a worker of ``serve --workers 2`` builds it: its single messages go to ``writer``."""
    for name, value in writer.environment().items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(context), base_url="http://testserver") as client:
        yield client


def post_sms(api: TestClient, key: str, campaign_id: str, idempotency_key: str, n: int = 1) -> Any:
    return api.post(
        "/api/v1/notifications/sms",
        json={"campaign_id": campaign_id, "phone_number": f"+8490512{n:04d}", "personalisation": {"ma": n}},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key},
    )


def messages(context: AppContext) -> int:
    with context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def test_a_worker_s_messages_are_written_by_the_writer_process(
    api: TestClient,
    context: AppContext,
    write_approved: Callable[..., str],
    single_key: Callable[..., str],
) -> None:
    campaign_id, key = write_approved(sms_text=SMS), single_key()

    first = post_sms(api, key, campaign_id, "k-1")
    again = post_sms(api, key, campaign_id, "k-1")

    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["content"] == {"body": "Ho so 1 da duoc tiep nhan."}
    assert messages(context) == 1
    with context.readers() as session:
        message = session.get(Message, first.json()["id"])
    assert message is not None
    assert message.address == "+84905120001"


def test_two_requests_with_one_key_in_a_batch_get_one_message(
    writer: WriterProcess,
    context: AppContext,
    write_approved: Callable[..., str],
    single_key: Callable[..., str],
) -> None:
    """The writer answers the second only after the first is stored, as a worker's own writer does."""
    campaign_id = write_approved(sms_text=SMS)
    single_key()
    with context.readers() as session:
        key_id = session.scalar(select(ApiKey.id))
        version, content_hash = approved_version(session, VersionCache(context.settings), campaign_id)
    assert key_id is not None
    request = SingleRequest(campaign_id, "sms", "0905 120 007", {"ma": 7}, None, "api:test")
    submission = Submission(key_id, "same", "hash", prepare_single(request, version, content_hash))
    write = RemoteWrite(writer.address, bytes.fromhex(writer.environment()[WRITER_KEY_ENV]))
    try:
        first, second = write([submission, submission])
    finally:
        write.close()

    assert isinstance(first, dict)
    assert isinstance(second, Stored)
    assert second.status_code == 201
    assert f'"id": {first["id"]}' in second.body
    assert messages(context) == 1


def test_a_killed_writer_is_answered_with_503_and_started_again(
    api: TestClient,
    writer: WriterProcess,
    context: AppContext,
    write_approved: Callable[..., str],
    single_key: Callable[..., str],
) -> None:
    campaign_id, key = write_approved(sms_text=SMS), single_key()
    assert post_sms(api, key, campaign_id, "before", 1).status_code == 201
    pid = writer.pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: writer.starts == 2, timeout=60, what="the writer started again")
    refused = post_sms(api, key, campaign_id, "during", 2)  # this worker's connection was to the dead one
    retried = post_sms(api, key, campaign_id, "during", 2)

    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["type"] == "urn:broadcaster:problem:writer-unavailable"
    assert retried.status_code == 201, retried.text
    assert writer.pid != pid
    assert messages(context) == 2


def test_what_the_writer_answers_travels_between_processes() -> None:
    made = Refused("not_sendable", "campaign_id", campaign="c", state="draft")
    refused = pickle.loads(pickle.dumps(made))  # noqa: S301  bytes this test made
    assert (refused.code, refused.field, refused.params) == (
        "not_sendable",
        "campaign_id",
        {"campaign": "c", "state": "draft"},
    )

    unexpected = _sendable(KeyError("slot"))
    assert isinstance(unexpected, RuntimeError)
    assert str(unexpected) == "KeyError: 'slot'"
    assert _sendable({"id": 1}) == {"id": 1}
