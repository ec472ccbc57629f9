"""The single-message API under load: ``POST /api/v1/notifications/sms`` for ~20 s against uvicorn with 2
workers on an embedded working directory (SQLite, SQLite broker), from load generators in other processes.

    .venv/bin/python -m benchmarks.web_api --seconds 20 --connections 64 --clients 2

Reports accepted requests/s, p50/p95/p99 latency and errors (benchmarks/README.md, "Web API"). The engine
does not run: the messages queue up (each request still writes its chunk's task to the broker).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
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

CONFIG_ENV = "BROADCASTER_CONFIG"
PHONES = [f"+849051{n:05d}" for n in range(5000)]  # mobiles, spread so no per-address cap is in play


def app_factory() -> Any:
    """The app ``broadcaster serve`` runs, for uvicorn's ``factory=True`` (one per worker process)."""
    from broadcaster.context import AppContext
    from broadcaster.web.app import create_app

    return create_app(AppContext.load(Path(os.environ[CONFIG_ENV])))


def prepare(root: Path) -> tuple[Path, str, str]:
    """A working directory with an approved SMS campaign and an API key: (config, campaign id, secret)."""
    from benchmarks.workdir import ADMIN
    from benchmarks.workdir import prepare as prepare_workdir
    from broadcaster.api_keys import create_key
    from broadcaster.clock import SystemClock
    from broadcaster.context import AppContext
    from broadcaster.vocabulary import Role

    prepared = prepare_workdir(root, channel="sms", count=10, port=free_port(), chunk_size=None)
    context = AppContext.load(prepared.config, clock=SystemClock())
    try:
        with context.sessions.begin() as session:
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
    env = {**os.environ, CONFIG_ENV: str(config)}
    code = (
        "import uvicorn; uvicorn.run('benchmarks.web_api:app_factory', factory=True, host='127.0.0.1', "
        f"port={port}, workers={workers}, log_level='warning')"
    )
    command = [sys.executable, "-c", code]  # our own code, with arguments built here
    return subprocess.Popen(command, env=env, cwd=Path.cwd(), start_new_session=True)  # noqa: S603


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
    """The CPU-independent figure: ``count`` requests one after another through the whole app in this
    process and thread (ASGI, no network; FastAPI's thread-pool calls made inline so that the profile sees
    the request's code; the urgent chunker batches in its own thread as in a server, its CPU counted too),
    timed in wall and in this process's CPU seconds: a machine shared with other work still gives a
    comparable CPU ms per request. ``profile``: write a cProfile dump there (of the request's thread)."""
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
                body = {"campaign_id": campaign_id, "phone_number": PHONES[i % len(PHONES)],
                        "personalisation": {}, "reference": f"p-{i}"}  # fmt: skip
                answer = await client.post("/api/v1/notifications/sms", json=body,
                                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
                return answer.status_code

            for i in range(20):  # warm: compiled templates, cached version and key, connections
                await post(len(PHONES) - 1 - i)
            profiler = cProfile.Profile() if profile else None
            statuses: dict[str, int] = {}
            cpu, wall = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for i in range(count):
                code = str(await post(i))
                statuses[code] = statuses.get(code, 0) + 1
            if profiler and profile:
                profiler.disable()
                profiler.dump_stats(profile)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        context.close()
    return {
        "mode": "in-process, 1 thread" + (", profiled" if profile else ""),
        "requests": count,
        "statuses": statuses,
        "cpu_ms_per_request": round(1000 * cpu / count, 2),
        "wall_ms_per_request": round(1000 * wall / count, 2),
        "requests_per_s": round(count / wall, 1),
    }


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
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections per load process")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
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
        wait_port(port, timeout=30)
        url = f"http://127.0.0.1:{port}"
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.clients, mp_context=context) as pool:
            warm = pool.submit(load_process, url, secret, campaign_id, 4, 1.0)  # compiles, connects, caches
            warm.result()
            futures = [
                pool.submit(load_process, url, secret, campaign_id, args.connections, args.seconds)
                for _ in range(args.clients)
            ]
            results = [f.result() for f in futures]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    latencies = [x for r in results for x in r["latencies"]]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    wall = max(r["wall"] for r in results)
    report = {
        "workers": args.workers,
        "connections": args.connections * args.clients,
        "seconds": round(wall, 1),
        "accepted": len(latencies),
        "accepted_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(1000 * _percentile(latencies, 0.95), 1),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 1),
        "errors": errors,
        # Answers other than 201 (refused, rate-limited, 5xx) apart from connection errors (exception names).
        "rejected": sum(n for k, n in errors.items() if k.isdigit()),
        "workdir": str(root),
    }
    print(json.dumps(report, indent=2))
    print(
        f"{report['accepted_per_s']} accepted/s, p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, "
        f"p99 {report['p99_ms']} ms, rejected {report['rejected']}, errors {errors or 0}; "
        f"written to {save_result('web-api', report)}"
    )


if __name__ == "__main__":
    main()
