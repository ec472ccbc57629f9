"""Staff pages over a big outbox: 1,000,000 bulk-inserted messages (``report_figures``' seeder), then the
p50/p95 of each page for a signed-in editor, through the whole app in-process (ASGI, no network):

    .venv/bin/python -m benchmarks.web_pages --n 1000000 --paths "/,/messages,/messages?status=delivered"

The pages are parameters: measure whatever exists. A path answering other than 200 is reported as such.
Figures and the commands are in benchmarks/README.md, "Web pages".
"""

from __future__ import annotations

import argparse
import gc
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report_figures import _seed
from benchmarks.web_api import save_result

EDITOR = "bien_tap"
PASSWORD = "mat-khau-do-kiem-2026"
# The dashboard, the message log's first page, filtered by campaign and status, by status and channel, a
# page deep in the log (keyset cursor: the id the previous page ended with), and a campaign's page.
DEFAULT_PATHS = (
    "/,/messages,/messages?campaign=bench-05&status=delivered,/messages?status=delivered&channel=sms,"
    "/messages?before=500000,/campaigns/bench-05"
)


def _real_definitions(workdir: Path) -> None:
    """The seeder's campaigns carry a stub definition (enough for reports); the campaign page parses it, so
    each gets the example campaign's definition under its own id and title."""
    from broadcaster.campaigns.files import ProviderInfo, SendRules, validate_paths
    from broadcaster.context import AppContext

    context = AppContext.load(workdir / "broadcaster.toml")
    try:
        bundles, problems = validate_paths(
            [context.campaigns_dir / "examples"],
            templates_dir=context.templates_dir,
            providers=ProviderInfo.all_from(context.settings),
            rules=SendRules.from_settings(context.settings),
        )
        if problems or not bundles:
            raise RuntimeError(f"the example campaign does not validate: {problems}")
        bundle = bundles[0]
        with context.engine.begin() as connection:
            ids = [
                row[0]
                for row in connection.exec_driver_sql("SELECT id FROM campaigns WHERE id LIKE 'bench-%'")
            ]
            for campaign_id in ids:
                snapshot = {**bundle.definition.model_dump(mode="json"), "id": campaign_id,
                            "title": f"Bench {campaign_id}"}  # fmt: skip
                connection.exec_driver_sql(
                    "UPDATE campaign_versions SET definition = ?, templates = ? WHERE campaign_id = ?",
                    (json.dumps(snapshot, ensure_ascii=False), json.dumps(bundle.templates), campaign_id),
                )
    finally:
        context.close()


def _editor(context: Any) -> None:
    from sqlalchemy import select

    from broadcaster.db.models import User
    from broadcaster.users import add_user, set_password
    from broadcaster.vocabulary import Role

    with context.sessions.begin() as session:
        if (
            session.scalar(select(User.id).where(User.login == EDITOR)) is not None
        ):  # a reused directory: signed up by an earlier run
            return
        add_user(session, actor="admin", login=EDITOR, role=Role.EDITOR, clock=context.clock)
        set_password(session, actor="admin", login=EDITOR, password=PASSWORD, clock=context.clock)


class FullCollections:
    """The cyclic collector's full (generation 2) collections while timing: how many and the longest, in ms.
    A full collection holds the request that triggers it (docs/web.md, "A frozen heap")."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds.append(time.perf_counter() - self._started)

    def take(self) -> dict[str, Any]:
        seen, self.seconds = self.seconds, []
        return {"full_gc": len(seen), "full_gc_max_ms": round(1000 * max(seen), 1) if seen else None}


def measure(workdir: Path, paths: list[str], repeat: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from broadcaster.context import AppContext
    from broadcaster.web.app import create_app

    context = AppContext.load(workdir / "broadcaster.toml")
    collections = FullCollections()
    gc.callbacks.append(collections)
    try:
        _editor(context)
        with TestClient(create_app(context)) as client:
            signed = client.post(
                "/sign-in", data={"login": EDITOR, "password": PASSWORD, "next": "/"}, follow_redirects=False
            )
            if signed.status_code != 303:
                raise RuntimeError(f"sign-in failed: {signed.status_code} {signed.text[:200]}")
            results: dict[str, Any] = {}
            for path in paths:
                first = client.get(path, headers={"Accept": "text/html"})  # warm: templates, caches
                if first.status_code != 200:
                    results[path] = {"status": first.status_code}
                    continue
                times: list[float] = []
                collections.take()
                for _ in range(repeat):
                    started = time.perf_counter()
                    client.get(path, headers={"Accept": "text/html"})
                    times.append(time.perf_counter() - started)
                times.sort()
                results[path] = {
                    "status": 200,
                    "p50_ms": round(1000 * statistics.median(times), 1),
                    "p95_ms": round(1000 * times[min(len(times) - 1, int(0.95 * len(times)))], 1),
                    "max_ms": round(1000 * times[-1], 1),
                    **collections.take(),
                }
            return results
    finally:
        gc.callbacks.remove(collections)
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1_000_000, help="messages to bulk-insert")
    parser.add_argument("--paths", default=DEFAULT_PATHS, help="comma-separated pages to time")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--workdir", type=Path, default=None, help="reuse a seeded directory (skips seeding)")
    args = parser.parse_args()

    if args.workdir is not None and (args.workdir / "broadcaster.toml").exists():
        workdir, seeded = args.workdir, None
    else:
        workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-web-pages-")) / "wd"
        started = time.perf_counter()
        _seed(workdir, args.n)
        _real_definitions(workdir)
        seeded = round(time.perf_counter() - started, 1)
    with sqlite3.connect(workdir / "broadcaster.sqlite3") as db:  # a reused directory has its own count
        messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    report = {
        "messages": messages,
        "seed_seconds": seeded,
        "pages": measure(workdir, [p.strip() for p in args.paths.split(",") if p.strip()], args.repeat),
        "workdir": str(workdir),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {save_result('web-pages', report)}")


if __name__ == "__main__":
    main()
