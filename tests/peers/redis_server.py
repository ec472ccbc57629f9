"""A redis-server of the test's own on a free port (never the machine's shared one), gone with the test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port, service_unavailable
from tests.peers.polling import wait_until


@contextmanager
def own_redis(directory: Path, *, port: int | None = None) -> Iterator[str]:
    """Start ``redis-server`` (no persistence) in ``directory`` on ``port`` (a free one if None); yields its
    URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_unavailable("redis-server", "no redis-server binary on PATH")
    import redis

    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603  the redis-server found on PATH
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return process.poll() is not None  # it died: stop waiting, the assert below says so

    try:
        wait_until(answers, timeout=10.0, what=f"redis-server on port {port}")
        assert process.poll() is None, f"redis-server on port {port} exited with {process.returncode}"
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
