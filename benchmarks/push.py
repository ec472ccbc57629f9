"""FCM push throughput: N notifications through ``FcmAdapter`` and the same requests from a raw httpx HTTP/2
client with the same concurrency, against the local FCM peer, in one run:

    .venv/bin/python -m benchmarks.push --n 20000 --concurrency 100

The peer (``channels/sandbox/fcm.py``: token endpoint, bearer and payload checks, HTTP/2 over h2c) runs in a
process of its own; each client runs in a fresh spawned process (``benchmarks/processes.py: in_child``),
alternating (raw, adapter, raw, ... with ``--rounds`` adapter runs), and each side's figure is the median of
its runs, so drift of a shared machine hits both sides of the ratio. Each side fetches its access token and
opens its connection before the clock starts. Figures: messages/s of each, the ratio (adapter ÷ raw; goal
≥ 0.8), CPU seconds and peak RSS (VmHWM) of each client process. Results and the commands are in
benchmarks/README.md, "Push (FCM)"; the JSON goes to ``benchmarks/results/push-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from benchmarks.processes import cpu_seconds, in_child, vm_hwm_kib
from benchmarks.web_api import save_result

PROJECT = "danang-city-app"
TITLE = "Thông báo lịch cắt điện"
BODY = "Khu vực phường Hải Châu 1 mất điện từ 8h00 đến 11h30 ngày 02/12 để bảo trì lưới điện."
LINK = "danang://outage/2026-12-02/hai-chau-1"


def _token(i: int) -> str:
    return f"bench{i:07d}:APA91b" + "x" * 140  # about the length of a real registration token


def _serve_peer(folder: str, urls: Any, ready: MpEvent, stop: MpEvent) -> None:
    from channels.sandbox.fcm import FcmBehaviour, running_fcm

    with running_fcm(Path(folder), FcmBehaviour(project_id=PROJECT)) as peer:
        urls.put(peer.url)
        ready.set()
        stop.wait()


@contextmanager
def fcm_peer(folder: Path) -> Iterator[str]:
    """The peer in a child process; yields its URL (the service-account file is ``folder/service-account.json``)."""
    context = multiprocessing.get_context("spawn")
    ready, stop, urls = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=_serve_peer, args=(str(folder), urls, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the FCM peer did not start within 30 s")
        yield str(urls.get(timeout=5))
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


def run_adapter(*, url: str, account_file: str, n: int, concurrency: int) -> dict[str, Any]:
    """In a child: N messages through ``FcmAdapter`` in windows of its capabilities, two calls at a time
    (``capabilities.overlap``), as the engine hands them."""
    from channels.base import OutboundMessage, SendOutcome
    from channels.push.fcm import FcmAdapter

    messages = [
        OutboundMessage(message_id=i, address=_token(i), subject=TITLE, body=BODY, options={"link": LINK})
        for i in range(1, n + 1)
    ]
    window = FcmAdapter.capabilities.window
    windows = [messages[i : i + window] for i in range(0, n, window)]
    adapter = FcmAdapter(
        project_id=PROJECT, service_account_file=account_file, endpoint=url, concurrency=concurrency
    )
    with adapter, ThreadPoolExecutor(max_workers=FcmAdapter.capabilities.overlap) as pool:
        adapter.send([OutboundMessage(message_id=0, address=_token(0), subject=TITLE, body=BODY)])  # token
        started = time.perf_counter()
        results = [r for answer in pool.map(adapter.send, windows) for r in answer]
        seconds = time.perf_counter() - started
    sent = sum(r.outcome == SendOutcome.SENT for r in results)
    return _figures(n, sent, seconds)


def run_raw(*, url: str, account_file: str, n: int, concurrency: int) -> dict[str, Any]:
    """In a child: the same N requests from one httpx HTTP/2 client, ``concurrency`` in flight."""
    import httpx
    import jwt

    account = json.loads(Path(account_file).read_text(encoding="utf-8"))
    send_url = f"{url}/v1/projects/{PROJECT}/messages:send"

    async def main() -> tuple[int, float]:
        async with httpx.AsyncClient(http1=False, http2=True, timeout=10.0) as client:
            now = int(time.time())
            claims = {"iss": account["client_email"], "aud": account["token_uri"], "iat": now, "exp": now + 3600,
                      "scope": "https://www.googleapis.com/auth/firebase.messaging"}  # fmt: skip
            assertion = jwt.encode(claims, account["private_key"], algorithm="RS256")
            grant = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
            token = (await client.post(account["token_uri"], data=grant)).json()["access_token"]
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json; charset=utf-8"}
            slots = asyncio.Semaphore(concurrency)

            async def one(i: int) -> bool:
                message = {
                    "token": _token(i),
                    "notification": {"title": TITLE, "body": BODY},
                    "data": {"link": LINK},
                }
                content = json.dumps({"message": message}, ensure_ascii=False, separators=(",", ":")).encode()
                async with slots:
                    response = await client.post(send_url, content=content, headers=headers)
                return response.status_code == 200

            await one(0)  # the connection is up before the clock starts, as the adapter's is
            started = time.perf_counter()
            answers = await asyncio.gather(*(one(i) for i in range(1, n + 1)))
            return sum(answers), time.perf_counter() - started

    sent, seconds = asyncio.run(main())
    return _figures(n, sent, seconds)


def _figures(n: int, sent: int, seconds: float) -> dict[str, Any]:
    """One client run: its rate, and what its process used in all (CPU from start, peak RSS)."""
    return {"messages": n, "sent": sent, "seconds": round(seconds, 3), "per_s": round(sent / seconds, 1),
            "cpu_seconds": round(cpu_seconds(os.getpid()), 2), "peak_rss_kib": vm_hwm_kib(os.getpid())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20000, help="notifications per run")
    parser.add_argument("--concurrency", type=int, default=100, help="requests in flight, both clients")
    parser.add_argument("--rounds", type=int, default=3, help="adapter runs, each between two raw runs")
    parser.add_argument("--no-save", action="store_true", help="print only (no benchmarks/results file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-push-") as folder, fcm_peer(Path(folder)) as url:
        kwargs = {"url": url, "account_file": str(Path(folder) / "service-account.json"), "n": args.n,
                  "concurrency": args.concurrency}  # fmt: skip
        raw = [in_child(run_raw, **kwargs)]
        adapter: list[dict[str, Any]] = []
        for _round in range(args.rounds):  # raw, adapter, raw, adapter, ..., raw
            adapter.append(in_child(run_adapter, **kwargs))
            raw.append(in_child(run_raw, **kwargs))
    raw_per_s = round(statistics.median(r["per_s"] for r in raw), 1)
    adapter_per_s = round(statistics.median(r["per_s"] for r in adapter), 1)
    figures = {
        "n": args.n,
        "concurrency": args.concurrency,
        "peer": "channels/sandbox/fcm.py (hypercorn, h2c) in its own process",
        "raw_runs": raw,
        "adapter_runs": adapter,
        "raw_per_s": raw_per_s,
        "adapter_per_s": adapter_per_s,
        "ratio": round(adapter_per_s / raw_per_s, 3),
        "raw_peak_rss_kib": max(r["peak_rss_kib"] for r in raw),
        "adapter_peak_rss_kib": max(r["peak_rss_kib"] for r in adapter),
    }
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    if not args.no_save:
        print(f"saved to {save_result('push', figures)}")


if __name__ == "__main__":
    main()
