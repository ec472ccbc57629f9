"""``python -m benchmarks.ceilings``: what the distributed deployment's shared services carry on this machine.

- **Broker** (RabbitMQ in a virtual host of its own, Redis in a ``redis-server`` of its own): kombu publishes
  ``--tasks`` messages of a Celery task's size (~600 bytes of JSON) to one queue, then one consumer takes and
  acknowledges them; tasks/s each way, with RabbitMQ's publisher confirms on as the engine has them
  (``tasks.celery_config``). ``redis-benchmark`` (LPUSH and RPOP, 50 clients) for Redis's own ceiling.
- **PostgreSQL** (a database of its own): ``pgbench`` with ``--clients`` connections for ``--seconds`` s, its
  TPC-B-like transaction (five statements and a commit, synchronous) and the select-only one.

The engine's own cost per message on each service comes from ``benchmarks.run --deployment distributed``
(CPU of the PostgreSQL backends and of the broker per message sent); with these ceilings it gives where one
more worker host stops adding messages/s (benchmarks/README.md, "Embedded and distributed").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from benchmarks.deployment import distributed_services

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = (
    json.dumps([[12345], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]).encode()
    + b" " * 480
)  # a dispatch_chunk task's body and headers are ~600 bytes


def broker_round_trip(url: str, tasks: int) -> dict[str, Any]:
    """Publish ``tasks`` messages, then consume and acknowledge them all: tasks/s each way."""
    from kombu.connection import Connection
    from kombu.entity import Exchange, Queue

    exchange = Exchange("ceiling", type="direct")  # type: ignore[no-untyped-call]
    queue = Queue("ceiling", exchange, routing_key="ceiling")  # type: ignore[no-untyped-call]
    options = {"confirm_publish": True} if url.startswith("amqp") else {}
    with Connection(url, transport_options=options) as connection:  # type: ignore[no-untyped-call]
        producer = connection.Producer()
        queue(connection.default_channel).declare()  # type: ignore[no-untyped-call]
        started = time.perf_counter()
        for _ in range(tasks):
            producer.publish(
                PAYLOAD, exchange=queue.exchange, routing_key="ceiling", content_type="application/json"
            )
        published = time.perf_counter() - started
        received = 0

        def on_message(_body: Any, message: Any) -> None:
            nonlocal received
            message.ack()
            received += 1

        started = time.perf_counter()
        with connection.Consumer(queue, callbacks=[on_message], prefetch_count=100):
            while received < tasks:
                connection.drain_events(timeout=10)
        consumed = time.perf_counter() - started
    return {"publish_per_s": round(tasks / published), "consume_ack_per_s": round(tasks / consumed)}


def redis_benchmark(url: str, requests: int) -> dict[str, Any]:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return {}
    port = str(urlsplit(url).port)
    command = [binary, "-h", "127.0.0.1", "-p", port, "-n", str(requests), "-c", "50", "-d", "600"]
    done = subprocess.run(  # noqa: S603  redis-benchmark from PATH against our own redis-server
        [*command, "-t", "lpush,rpop", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures: dict[str, Any] = {}
    for line in done.stdout.replace("\r", "\n").splitlines():
        found = re.match(r"(\w+): ([\d.]+) requests per second", line.strip())
        if found:
            figures[f"redis_benchmark_{found.group(1).lower()}_per_s"] = round(float(found.group(2)))
    return figures


def pgbench(url: str, *, clients: list[int], seconds: int) -> dict[str, Any]:
    """TPC-B-like (five statements and a synchronous commit) and select-only transactions/s, per number of
    connections: with more, concurrent commits share a flush of the log (group commit)."""
    binary = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    parsed = make_url(url)
    base = [binary, "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    base += ["-U", parsed.username or "postgres"]
    env = dict(os.environ, PGPASSWORD=parsed.password or "")
    database = str(parsed.database)
    subprocess.run([*base, "-i", "-q", "-s", "1", database], env=env, capture_output=True, check=True)  # noqa: S603
    figures: dict[str, Any] = {}
    for count in clients:
        for name, extra in (("tpcb", []), ("select_only", ["-S"])):
            done = subprocess.run(  # noqa: S603  pgbench on PATH (or PostgreSQL 15's), on the run's own database
                [*base, "-c", str(count), "-j", str(min(count, 2)), "-T", str(seconds), *extra, database],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            found = re.search(r"tps = ([\d.]+)", done.stdout)
            figures[f"pgbench_{name}_tps_{count}_clients"] = round(float(found.group(1))) if found else 0
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceilings", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5000, help="messages through each broker")
    parser.add_argument("--clients", default="2,16", help="pgbench connections, comma-separated")
    parser.add_argument("--seconds", type=int, default=10, help="pgbench duration of each run")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default results/ceilings-DATE)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="broadcaster-ceilings-"))
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    for broker in ("rabbitmq", "redis"):
        with distributed_services(broker, scratch) as services:
            figures = broker_round_trip(services.broker_url, args.tasks)
            if broker == "redis":
                figures |= redis_benchmark(services.broker_url, args.tasks * 5)
                clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
                results["postgresql"] = pgbench(services.database_url, clients=clients, seconds=args.seconds)
                print("postgresql", results["postgresql"], flush=True)
            results[broker] = figures
            print(broker, figures, flush=True)
    results["load_after"] = os.getloadavg()
    results["finished_at"] = datetime.now(UTC).isoformat()
    out = args.out or RESULTS / f"ceilings-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"Results: {out}")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
