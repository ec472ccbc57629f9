"""``broadcaster serve --workers 2``: two uvicorn worker processes of one working directory take single
messages at the same time, handing them to one writer process; every accepted request is one message,
written once, with its urgent chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcaster.context import AppContext
from broadcaster.db.models import Chunk, Message
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.web.api.single_messages import single_key, write_approved
from tests.conftest import free_port
from tests.peers.polling import wait_until

__all__ = ["single_key", "write_approved"]  # fixtures used here

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-c", "from broadcaster.cli import main; main()"]
REQUESTS = 60


@pytest.fixture
def served(workdir: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    env.update(BROADCASTER_CONFIG=str(workdir / "broadcaster.toml"), LOGNAME=ADMIN_LOGIN, USER=ADMIN_LOGIN)
    with (workdir / "serve.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: S603  the project's own CLI
            [*CLI, "serve", "--port", str(port), "--workers", "2"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(  # each worker imports the whole application: seconds, more on a loaded machine
            lambda: server.poll() is not None or (_spawned(server.pid) == 3 and _answers(url)),
            timeout=120,
            what="two serve workers and the single-message writer answering",
        )
        assert server.poll() is None, (workdir / "serve.log").read_text(encoding="utf-8")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)


def _spawned(pid: int) -> int:
    """The processes ``serve`` spawned (its children, less multiprocessing's resource tracker): the uvicorn
    workers and the single-message writer."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    commands = [Path(f"/proc/{child}/cmdline").read_bytes() for child in children]
    return sum(b"spawn_main" in command for command in commands)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/openapi.json", timeout=2):  # noqa: S310  our own server
            return True
    except OSError:
        return False


def _post(url: str, key: str, body: dict[str, object], idempotency_key: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(  # noqa: S310  our own server
        f"{url}/api/v1/notifications/sms",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts worker processes through /proc")
def test_two_workers_write_every_accepted_message_once(
    served: str, write_approved: Callable[..., str], single_key: Callable[..., str], workdir: Path
) -> None:
    campaign_id = write_approved(sms_text="Ho so {{ message.ma }} da duoc tiep nhan.")
    key = single_key(rate=10_000)

    def send(n: int) -> tuple[int, dict[str, object]]:
        body: dict[str, object] = {
            "campaign_id": campaign_id,
            "phone_number": f"+84905{n:06d}",
            "personalisation": {"ma": n},
        }
        return _post(served, key, body, idempotency_key=f"k-{n % (REQUESTS // 2)}-{n >= REQUESTS // 2}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(send, range(REQUESTS)))
        again = list(pool.map(send, range(REQUESTS)))  # every key once more: the first answers come back

    assert [status for status, _body in answers] == [201] * REQUESTS, answers
    ids = [body["id"] for _status, body in answers]
    assert len(set(ids)) == REQUESTS
    assert [body["id"] for _status, body in again] == ids
    context = AppContext.load(workdir / "broadcaster.toml")

    def chunked() -> int:
        with context.readers() as session:
            return int(session.scalar(select(func.count()).where(Message.chunk_id.is_not(None))) or 0)

    try:
        with context.readers() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == REQUESTS
        # The writer's chunker cuts the urgent chunks after the answers, a round at most every 0.2 s.
        wait_until(lambda: chunked() == REQUESTS, timeout=60, what="every message in an urgent chunk")
        with context.readers() as session:
            queues = set(session.scalars(select(Chunk.queue)))
    finally:
        context.close()
    assert queues == {"send.sms.sms_main.urgent"}
