"""The audit verify benchmark: a SQLite audit log of N chained entries, built by bulk insert (the chain computed
here with the engine's own encoding, not through N commits), then ``verify_chain`` over all of it; time and
peak memory of each phase.

Each phase runs in a child process of its own, so its peak RSS (``ru_maxrss``) is that phase's alone:

    .venv/bin/python -m benchmarks.audit_verify --n 1000000

(``make bench-audit-verify``). The figures are in benchmarks/README.md, "Audit verify".
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import phases
from broadcaster.audit.append import HEAD_ID
from broadcaster.audit.chain import entry_hash, json_value
from broadcaster.audit.verify import verify_chain
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.workdir import init_workdir

START = datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
BATCH = 50_000
ACTIONS = ("campaign.approve", "consent.grant", "consent.withdraw", "delivery.window", "delivery.results")


def _details(rng: random.Random, number: int, action: str) -> dict[str, Any]:
    """Small details, like most entries'; a delivery entry names a few messages by id, status and hashes."""
    if action.startswith("delivery."):
        return {
            "campaign": f"bench-{number % 24:02d}",
            "messages": [
                {"id": number * 4 + k, "status": "delivered", "address_hash": f"{rng.getrandbits(256):064x}"}
                for k in range(4)
            ],
            "content_hash": f"{number % 97:064x}",
        }
    return {"campaign": f"bench-{number % 24:02d}", "channel": "sms" if number % 3 else "email", "n": number}


def _seed(workdir: Path, n: int) -> dict[str, Any]:
    """A working directory and ``n`` more entries chained after the one ``init`` writes, bulk-inserted."""
    context = init_workdir(workdir, admin_login="admin", clock=FrozenClock(START))
    rng = random.Random(13)
    raw = context.engine.raw_connection()
    try:
        cursor = raw.cursor()
        last_id, prev = cursor.execute(
            "SELECT last_id, last_hash FROM audit_chain_head WHERE id = ?", (HEAD_ID,)
        ).fetchone()
        rows: list[tuple[Any, ...]] = []
        for number in range(1, n + 1):
            position = last_id + number
            action = ACTIONS[number % len(ACTIONS)]
            at = START + timedelta(seconds=30 * number, microseconds=number % 1_000_000)
            fields = {
                "at": at,
                "actor": "admin" if number % 5 else "system:delivery",
                "action": action,
                "subject_type": "campaign",
                "subject_id": f"bench-{number % 24:02d}",
                "reason": None if number % 7 else "phê duyệt theo kế hoạch",
                "details": json_value(_details(rng, number, action)),
            }
            digest = entry_hash(id=position, prev_hash=prev, **fields)
            rows.append((
                position, at.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds"), fields["actor"],
                action, fields["subject_type"], fields["subject_id"], fields["reason"],
                json.dumps(fields["details"]), prev, digest,
            ))  # fmt: skip
            prev = digest
            if len(rows) == BATCH:
                _insert(cursor, rows)
                raw.commit()
                rows = []
        if rows:
            _insert(cursor, rows)
        cursor.execute(
            "UPDATE audit_chain_head SET last_id = ?, last_hash = ? WHERE id = ?",
            (last_id + n, prev, HEAD_ID),
        )
        raw.commit()
    finally:
        raw.close()
    context.close()
    size = (workdir / "broadcaster.sqlite3").stat().st_size
    return {"entries": last_id + n, "db_mib": round(size / 2**20, 1)}


def _insert(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    cursor.executemany(
        "INSERT INTO audit_log (id, at, actor, action, subject_type, subject_id, reason, details, prev_hash,"
        " entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _verify(workdir: Path, n: int) -> dict[str, Any]:
    context = AppContext.load(workdir / "broadcaster.toml")
    with context.readers() as session:
        started = time.perf_counter()
        verdict = verify_chain(session)
        seconds = time.perf_counter() - started
    context.close()
    if not verdict.ok:
        raise SystemExit(f"the benchmark's chain does not verify: {verdict.broken}")
    return {
        "entries": verdict.entries,
        "verify_chain_s": round(seconds, 2),
        "per_s": round(verdict.entries / seconds),
    }


PHASES: dict[str, phases.Phase] = {"seed": _seed, "verify": _verify}


def main() -> None:
    phases.main("benchmarks.audit_verify", __doc__, PHASES, default_n="1000000", what="audit entries")


if __name__ == "__main__":
    main()
