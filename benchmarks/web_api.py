"""The single-message API under load: ``POST /api/v1/notifications/sms`` for ~20 s against
``broadcaster serve --workers 2`` (uvicorn) on an embedded working directory (SQLite, SQLite broker), from
wrk (Debian's package ``wrk``) in another process, each request with a new Idempotency-Key and number:

    .venv/bin/python -m benchmarks.web_api --seconds 20 --connections 64

Reports accepted requests/s, p50/p95/p99 latency and errors (benchmarks/README.md, "Web API"). The engine
does not run: the messages queue up (their urgent chunks' tasks are still written to the broker).
``--load httpx`` uses Python load processes instead of wrk (they need a core of their own per ~300 req/s).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.processes import free_port, wait_port

PHONES = [f"+849051{n:05d}" for n in range(5000)]  # mobiles, spread so no per-address cap is in play


def prepare(root: Path) -> tuple[Path, str, str]:
    """A working directory with an approved SMS campaign and an API key: (config, campaign id, secret)."""
    from benchmarks.workdir import ADMIN
    from benchmarks.workdir import prepare as prepare_workdir
    from broadcaster.api_keys import create_key
    from broadcaster.clock import SystemClock
    from broadcaster.context import AppContext
    from broadcaster.users import add_user
    from broadcaster.vocabulary import Role

    prepared = prepare_workdir(root, channel="sms", count=10, port=free_port(), chunk_size=None)
    context = AppContext.load(prepared.config, clock=SystemClock())
    try:
        with context.sessions.begin() as session:
            # ``broadcaster serve`` runs as the login of whoever runs the benchmark, as an operator's would.
            add_user(session, actor=ADMIN, login=getpass.getuser(), role=Role.ADMIN, clock=context.clock)
            secret = create_key(
                session,
                actor=ADMIN,
                name="benchmark",
                role=Role.EDITOR,
                clock=context.clock,
                rate_per_minute=100_000_000,
            ).secret
    finally:
        context.close()
    return prepared.config, prepared.campaign_id, secret


def serve(config: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    """``broadcaster serve`` as an operator runs it."""
    command = [str(Path(sys.executable).with_name("broadcaster")), "--config", str(config), "serve", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers)]  # fmt: skip
    return subprocess.Popen(command, cwd=Path.cwd(), start_new_session=True)  # noqa: S603


WRK_SCRIPT = Path(__file__).resolve().parent / "web_api_load.lua"


def wrk_load(
    url: str, secret: str, campaign_id: str, connections: int, seconds: float, rate: float = 0
) -> dict[str, Any]:
    """One wrk run (one thread: a load generator that needs little of the machine's two cores); ``rate``
    requests/s on a fixed schedule, or 0 for as fast as the answers come."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or --load httpx)")
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), url]  # fmt: skip
    env = {**os.environ, "WRK_SECRET": secret, "WRK_CAMPAIGN": campaign_id, "WRK_RATE": str(rate)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout  # noqa: S603
    return dict(json.loads(out.strip().splitlines()[-1]))


async def _load(url: str, secret: str, campaign_id: str, connections: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(n: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                body = json.dumps(
                    {
                        "campaign_id": campaign_id,
                        "phone_number": PHONES[(n * 7919 + i) % len(PHONES)],
                        "personalisation": {},
                        "reference": f"bench-{n}-{i}",
                    }
                )
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/api/v1/notifications/sms",
                        content=body,
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    )
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                elapsed = time.perf_counter() - started
                if response.status_code == 201:
                    latencies.append(elapsed)
                else:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "wall": wall}


def load_process(url: str, secret: str, campaign_id: str, connections: int, seconds: float) -> dict[str, Any]:
    return asyncio.run(_load(url, secret, campaign_id, connections, seconds))


def in_process(
    config: Path, campaign_id: str, secret: str, count: int, profile: Path | None
) -> dict[str, Any]:
    """The figure a busy machine cannot spoil: ``count`` requests, ``CONCURRENCY`` at a time, through the
    whole app in this process (ASGI, no network, the client's own CPU included; FastAPI's thread-pool
    calls made inline so that the profile sees the request's code; the group commit writes in its own
    thread as in a server, its CPU counted too), timed in wall and in this process's CPU seconds: a machine
    shared with other work still gives a comparable CPU ms per request. ``profile``: write a cProfile dump there (of the request's thread)."""
    return asyncio.run(_in_process(config, campaign_id, secret, count, profile))


async def _inline(func: Any, *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


async def _in_process(
    config: Path, campaign_id: str, secret: str, count: int, profile: Path | None
) -> dict[str, Any]:
    import cProfile

    import fastapi.dependencies.utils
    import fastapi.routing
    import httpx

    from broadcaster.context import AppContext
    from broadcaster.web.app import create_app

    fastapi.routing.run_in_threadpool = _inline  # type: ignore[attr-defined]
    fastapi.dependencies.utils.run_in_threadpool = _inline  # type: ignore[attr-defined]
    context = AppContext.load(config)
    app = create_app(context)
    headers = {"Authorization": f"Bearer {secret}"}
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:

            async def post(i: int) -> int:
                body = {"campaign_id": campaign_id, "phone_number": f"+84905{i:06d}",
                        "personalisation": {}, "reference": f"p-{i}"}  # fmt: skip
                answer = await client.post("/api/v1/notifications/sms", json=body,
                                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
                return answer.status_code

            for i in range(20):  # warm: compiled templates, cached version and key, connections
                await post(count + i)
            profiler = cProfile.Profile(time.thread_time) if profile else None
            statuses: dict[str, int] = {}
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            gate = asyncio.Semaphore(CONCURRENCY)

            async def counted(i: int) -> None:
                async with gate:
                    code = str(await post(i))
                statuses[code] = statuses.get(code, 0) + 1

            await asyncio.gather(*(counted(i) for i in range(count)))
            if profiler and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        context.close()
    return {
        "mode": f"in-process, {CONCURRENCY} at a time" + (", profiled" if profile else ""),
        "requests": count,
        "statuses": statuses,
        "cpu_ms_per_request": round(1000 * cpu / count, 2),
        "wall_ms_per_request": round(1000 * wall / count, 2),
        "requests_per_s": round(count / wall, 1),
    }


# Requests in flight at once in --in-process mode, so that the group commit writes batches as in a server.
CONCURRENCY = 64
RESULTS = Path(__file__).resolve().parent / "results"


def save_result(name: str, figures: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>-<UTC date>.json``, with the machine's load when it was measured (the
    figures of a shared machine mean little without it)."""
    out = RESULTS / f"{name}-{time.strftime('%Y-%m-%d', time.gmtime())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    stamped = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()], **figures}  # fmt: skip
    out.write_text(json.dumps(stamped, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--connections", type=int, default=64, help="concurrent connections (per load process)"
    )
    parser.add_argument(
        "--rate", type=float, default=0,
        help="with wrk: offer this many requests/s on a fixed schedule (latency at a given load)",
    )  # fmt: skip
    parser.add_argument("--load", choices=("wrk", "httpx"), default="wrk", help="the load generator")
    parser.add_argument("--clients", type=int, default=2, help="with --load httpx: load processes")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--in-process", type=int, default=0, metavar="N",
        help="instead of the load test: N requests in this process, one at a time (CPU ms per request)",
    )  # fmt: skip
    parser.add_argument("--profile", type=Path, default=None, help="with --in-process: write a cProfile dump")
    args = parser.parse_args()

    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-web-api-"))
    config, campaign_id, secret = prepare(root)
    if args.in_process:
        figures = in_process(config, campaign_id, secret, args.in_process, args.profile)
        print(json.dumps(figures, indent=2))
        save_result("web-api", {**figures, "workdir": str(root)})
        return
    port = free_port()
    server = serve(config, port, args.workers)
    try:
        wait_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}"
        if args.load == "wrk":
            wrk_load(url, secret, campaign_id, 4, 1.0)  # warm: compiled templates, cached version and key
            run = wrk_load(url, secret, campaign_id, args.connections, args.seconds, args.rate)
            figures = _wrk_figures(run)
        else:
            figures = _httpx_figures(url, secret, campaign_id, args)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    report = {
        "server": f"broadcaster serve --workers {args.workers}",
        "load": args.load,
        "offered_per_s": args.rate or None,
        "connections": args.connections * (args.clients if args.load == "httpx" else 1),
        **figures,
        "messages_in_outbox": _api_messages(config),
        "workdir": str(root),
    }
    print(json.dumps(report, indent=2))
    print(
        f"{report['accepted_per_s']} accepted/s, p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, "
        f"p99 {report['p99_ms']} ms, rejected {report['rejected']}, errors {report['errors'] or 0}; "
        f"written to {save_result(_result_name(args), report)}"
    )


def _result_name(args: argparse.Namespace) -> str:
    """``web-api`` for the default run; the variants say what differs, so they do not overwrite it."""
    name = "web-api"
    if args.rate:
        name += f"-{args.rate:g}-per-s"
    if args.connections != 64:
        name += f"-{args.connections}-connections"
    return name


def _wrk_figures(run: dict[str, Any]) -> dict[str, Any]:
    seconds = run["duration_us"] / 1e6
    accepted = run["requests"] - run["non_2xx"]
    return {
        "seconds": round(seconds, 1),
        "accepted": accepted,
        "accepted_per_s": round(accepted / seconds, 1),
        "p50_ms": round(run["p50_us"] / 1000, 1),
        "p95_ms": round(run["p95_us"] / 1000, 1),
        "p99_ms": round(run["p99_us"] / 1000, 1),
        "max_ms": round(run["max_us"] / 1000, 1),
        "rejected": run["non_2xx"],  # answers of 400 and above (refused, rate-limited, 5xx)
        "errors": {k: run[k] for k in ("connect", "read", "write", "timeout") if run[k]},
    }


def _httpx_figures(url: str, secret: str, campaign_id: str, args: argparse.Namespace) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.clients, mp_context=context) as pool:
        pool.submit(load_process, url, secret, campaign_id, 4, 1.0).result()  # warm
        futures = [
            pool.submit(load_process, url, secret, campaign_id, args.connections, args.seconds)
            for _ in range(args.clients)
        ]
        results = [f.result() for f in futures]
    latencies = [x for r in results for x in r["latencies"]]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    wall = max(r["wall"] for r in results)
    return {
        "seconds": round(wall, 1),
        "accepted": len(latencies),
        "accepted_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(1000 * _percentile(latencies, 0.95), 1),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
        # Answers other than 201 (refused, rate-limited, 5xx); connection errors by exception name.
        "rejected": sum(n for k, n in errors.items() if k.isdigit()),
        "errors": {k: n for k, n in errors.items() if not k.isdigit()},
    }


def _api_messages(config: Path) -> int:
    """The messages the API wrote (warm-up included): every accepted request must be one of them."""
    from sqlalchemy import func, select

    from broadcaster.context import AppContext
    from broadcaster.db.models import Message

    context = AppContext.load(config)
    try:
        with context.readers() as session:
            return int(session.scalar(select(func.count()).where(Message.idempotency_key.like("api:%"))) or 0)
    finally:
        context.close()


if __name__ == "__main__":
    main()
