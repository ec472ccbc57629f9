"""The distributed deployment of the engine benchmark (docs/architecture.md §3): a PostgreSQL database and a
broker of the run's own, and the real ``broadcaster worker``, ``worker --gateway`` and ``beat`` processes.

The services are made per run and removed afterwards: a database ``bench_<hex>`` on the local PostgreSQL, and a
RabbitMQ virtual host (``rabbitmqctl``) or a ``redis-server`` of its own on a free port, so that nothing the
other users of the machine's shared services hold is touched. Override the servers with
``BROADCASTER_BENCH_POSTGRES_URL`` (a database where ``CREATE DATABASE`` is allowed) and
``BROADCASTER_BENCH_RABBITMQ_URL``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.processes import cpu_seconds, descendants, free_port, wait_port

__all__ = [
    "BROKERS",
    "DistributedWorkers",
    "Services",
    "broker_process_pid",
    "broker_service",
    "distributed_services",
    "postgres_cpu_by_client",
    "postgres_database",
]

POSTGRES_URL = os.environ.get("BROADCASTER_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RABBITMQ_URL = os.environ.get("BROADCASTER_BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = ("rabbitmq", "redis")
ROOT = Path(__file__).resolve().parent.parent  # the checkout these benchmarks belong to
STOP_SECONDS = 30.0
MAX_RESTARTS = 3  # a worker's warm shutdown; killed after it


@dataclass(frozen=True)
class Services:
    database_url: str
    broker_url: str
    broker: str  # rabbitmq | redis
    database: str  # the database's name: its backends are this run's
    redis_pid: int | None = None  # our own redis-server, when the broker is Redis


def _admin_engine() -> Engine:
    # CREATE/DROP DATABASE cannot run in a transaction.
    return create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _rabbitmqctl(*args: str) -> None:
    # The local broker's own tool on PATH, with arguments built here.
    subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60, check=True)  # noqa: S603, S607


@contextmanager
def postgres_database(name: str) -> Iterator[str]:
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _rabbitmq_vhost(name: str) -> Iterator[str]:
    user = urlsplit(RABBITMQ_URL).username or "guest"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield RABBITMQ_URL.rstrip("/") + "/" + name
    finally:
        _rabbitmqctl("delete_vhost", name)


@contextmanager
def _redis_server(scratch: Path) -> Iterator[tuple[str, int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found on PATH (apt-get install redis-server)")
    port = free_port()
    scratch.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603  redis-server from PATH, arguments built here
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=scratch,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def broker_service(broker: str, scratch: Path, name: str) -> Iterator[tuple[str, int | None]]:
    """A broker of one run's own, removed on the way out: its URL, and the pid of our redis-server."""
    if broker not in BROKERS:
        raise ValueError(f"--broker: {broker!r} is not one of {', '.join(BROKERS)}")
    if broker == "rabbitmq":
        with _rabbitmq_vhost(name) as broker_url:
            yield broker_url, None
    else:
        with _redis_server(scratch / name) as (broker_url, pid):
            yield broker_url, pid


@contextmanager
def distributed_services(broker: str, scratch: Path) -> Iterator[Services]:
    """A fresh PostgreSQL database and broker for one run; both removed on the way out."""
    if broker not in BROKERS:
        raise ValueError(f"--broker: {broker!r} is not one of {', '.join(BROKERS)}")
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with postgres_database(name) as database_url, broker_service(broker, scratch, name) as (broker_url, pid):
        yield Services(database_url, broker_url, broker, name, redis_pid=pid)


def postgres_backends(database: str) -> dict[int, int]:
    """The server processes of the connections to ``database`` (the run's), by the client's local port."""
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT pid, client_port FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
            return {int(port or 0): int(pid) for pid, port in rows}
    finally:
        admin.dispose()


def port_owners() -> dict[int, int]:
    """Local TCP port -> pid of the process holding the socket (``ss -tnp``; empty when ss is missing)."""
    try:
        listing = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, timeout=30, check=True)  # noqa: S607  iproute2's ss
    except (OSError, subprocess.SubprocessError):
        return {}
    owners: dict[int, int] = {}
    for line in listing.stdout.splitlines():
        fields = line.split()
        found = re.search(r"pid=(\d+)", line)
        if len(fields) >= 4 and found and ":" in fields[3]:
            owners[int(fields[3].rpartition(":")[2])] = int(found.group(1))
    return owners


def postgres_cpu_by_client(database: str, families: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds of the run's PostgreSQL server processes, by the process family of their client (a worker
    and its pool children, beat, the driver); ``postgresql`` is their sum."""
    owners = port_owners()
    family_of = {pid: name for name, pids in families.items() for pid in pids}
    spent: dict[str, float] = {}
    for port, backend in postgres_backends(database).items():
        client = family_of.get(owners.get(port, 0), "other")
        spent[f"postgresql/{client}"] = spent.get(f"postgresql/{client}", 0.0) + cpu_seconds(backend)
    spent["postgresql"] = sum(spent.values())
    return spent


def broker_process_pid(services: Services) -> int | None:
    """The broker's server process on this machine: our redis-server, or RabbitMQ's Erlang VM (shared with
    the machine's other users, so its CPU over a run is an upper bound of what the run cost it)."""
    if services.redis_pid is not None:
        return services.redis_pid
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    return int(entry.name)
            except OSError:
                continue
    return None


class DistributedWorkers:
    """``broadcaster worker`` (planning and e-mail), ``broadcaster worker --gateway P`` per SMPP provider,
    ``broadcaster worker --inbound`` (their receipts) and ``broadcaster beat``, each started as an operator
    would (docker/compose.yaml), in the working directory. A context manager."""

    def __init__(self, directory: Path, *, gateways: list[str], log_dir: Path) -> None:
        self.directory = directory
        self.log_dir = log_dir
        commands = {"main": ["worker"], "beat": ["beat"]}
        commands |= {f"gateway-{name}": ["worker", "--gateway", name] for name in gateways}
        # The SMPP accounts hand their receipts to it: without it only beat's retry would apply them.
        if gateways:
            commands["inbound"] = ["worker", "--inbound"]
        self.commands = commands
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}  # exits during the run (their CPU until then is not counted)

    def __enter__(self) -> DistributedWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.commands:
            self._start(name)
        return self

    def _start(self, name: str) -> None:
        cli = Path(sys.executable).with_name("broadcaster")
        env = dict(os.environ, BROADCASTER_CONFIG=str(self.directory / "broadcaster.toml"))
        # The same code as this process, whichever checkout the installed package points at.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        with (self.log_dir / f"{name}.log").open("ab") as log_file:
            self.processes[name] = subprocess.Popen(  # noqa: S603  the venv's own CLI, argv built here
                [str(cli), *self.commands[name]],
                cwd=self.directory,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def check_alive(self) -> None:
        """Start again a process that exited, as a service manager's restart policy would (docker/), and
        count it in ``restarts``; one that keeps exiting stops the run with the end of its log."""
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            log = self.log_dir / f"{name}.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            self.restarts[name] = self.restarts.get(name, 0) + 1
            if self.restarts[name] > MAX_RESTARTS:
                raise RuntimeError(f"{name} exited with {process.returncode}; {log}:\n{tail}")
            print(
                f"  {name} exited with {process.returncode}, started again: {tail.strip()[-300:]}", flush=True
            )
            self._start(name)

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds of each process family so far (a worker with its pool children)."""
        return {
            name: cpu_seconds(process.pid) + sum(cpu_seconds(child) for child in descendants(process.pid))
            for name, process in self.processes.items()
        }

    def pids(self) -> dict[str, list[int]]:
        return {name: [p.pid, *descendants(p.pid)] for name, p in self.processes.items()}

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
