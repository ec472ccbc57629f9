"""Brokers of a test's own, never the machine's shared ones: a redis-server and a RabbitMQ node on free ports,
with their data in the test's folder, that the test may stop and start again on the same port and data.

The RabbitMQ node runs ``/usr/lib/rabbitmq/bin/rabbitmq-server`` (the Debian wrapper on PATH switches to the
``rabbitmq`` user, who cannot write the test's folder) with its own node name, ports, data and log folders,
no plugins (the shared node's management plugin holds port 15672) and a home of its own for the Erlang
cookie. Both skip (fail under ``BROADCASTER_REQUIRE_SERVICES=1``) when the server cannot start here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from functools import partial
from pathlib import Path

from tests.broadcaster.delivery.kill9_campaign import listening
from tests.conftest import free_port, service_unavailable
from tests.peers.polling import wait_until

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_SECONDS = 120.0  # an Erlang node on a loaded 2-core machine


class OwnBroker:
    """A broker server process of the test's own: ``start``, ``stop`` (a clean shutdown, data kept)."""

    name = "broker"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> None:
        argv, env = self.command()
        self.starts += 1
        with (self.folder / f"server-{self.starts}.log").open("wb") as log:
            try:
                self.process = subprocess.Popen(  # noqa: S603  a fixed command line of the broker's server
                    argv,
                    cwd=self.folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                service_unavailable(self.name, f"cannot start a server of the test's own: {exc}")
        try:
            wait_until(
                partial(self._up),
                timeout=START_SECONDS,
                interval=0.2,
                what=f"{self.name} on port {self.port}",
            )
        except TimeoutError as exc:
            self.kill()
            service_unavailable(
                self.name, f"a server of the test's own did not start: {exc}; see {self.folder}"
            )

    def _up(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise TimeoutError(f"{self.name} exited with code {self.process.returncode}")
        return listening(self.port)

    def stop(self) -> None:
        """SIGTERM to the server (the whole session: RabbitMQ's script and its Erlang VM): a clean shutdown that
        keeps the data; returns once nothing listens on the port."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)
        wait_until(lambda: not listening(self.port), timeout=30, what=f"{self.name} stopped")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class OwnRedis(OwnBroker):
    """redis-server with its data in an append-only file (flushed every second and at a clean shutdown): as an operator keeps the
    queue of a deployment, so a restart loses no task."""

    name = "Redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> tuple[list[str], dict[str, str]]:
        executable = shutil.which("redis-server")
        if executable is None:
            service_unavailable(self.name, "redis-server is not on PATH")
        argv = [str(executable), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        argv += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        return argv, dict(os.environ)


class OwnRabbitMQ(OwnBroker):
    name = "RabbitMQ"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.dist_port = free_port()
        self.node = f"bc-test-{uuid.uuid4().hex[:8]}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def command(self) -> tuple[list[str], dict[str, str]]:
        if not RABBITMQ_SERVER.exists():
            service_unavailable(self.name, f"{RABBITMQ_SERVER} is not installed")
        for sub in ("home", "mnesia", "log"):
            (self.folder / sub).mkdir(exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n", encoding="ascii")
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.port}\nloopback_users = none\n", encoding="ascii"
        )
        env = dict(os.environ)
        env.update(
            HOME=str(self.folder / "home"),  # the Erlang cookie of this node
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.folder / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.folder / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.folder / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.folder / "rabbitmq.conf"),
            RABBITMQ_PID_FILE=str(self.folder / "rabbitmq.pid"),
        )
        return [str(RABBITMQ_SERVER)], env
