"""The report benchmark: N messages over a year seeded by bulk insert (not through the engine), the daily
rollups rebuilt, then one half-year report built from them; then retention blanks every message (the clock
past ``[retention] personal_data_days``) and the report is built again (the same figures: its days are
frozen); time and peak memory of each phase.

Each phase runs in a child process of its own, so its peak RSS (``ru_maxrss``) is that phase's alone:

    .venv/bin/python -m benchmarks.report_figures --n 1000000,100000

(``make bench-report``). The figures are in benchmarks/README.md, "Report".
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import phases
from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.reporting.csv_writer import render_csv
from broadcaster.reporting.figures import build_report
from broadcaster.reporting.periods import half_year
from broadcaster.reporting.rollups import rebuild
from broadcaster.retention import apply_retention
from broadcaster.workdir import init_workdir

YEAR = 2025
NOW = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)  # after 2025-H2 (to 15/11) closed: its days get frozen
ITEMS = ("III.1", "III.2", "III.3", "III.4", "III.5.c", "III.7", "III.8", "III.9")
PEOPLE = 200_000
BATCH = 50_000
# (status, share, accepted, reason): what a year of broadcasts looks like, roughly.
OUTCOMES = (
    ("delivered", 0.80, True, None),
    ("sent", 0.08, True, None),
    ("permanent_failure", 0.04, True, None),
    ("technical_failure", 0.02, False, None),
    ("suppressed", 0.04, False, "opted out"),
    ("suppressed", 0.02, False, "on the do-not-call register"),
)


def _seed(workdir: Path, n: int) -> dict[str, Any]:
    """A working directory, 24 campaigns (two a month, each with one run) and ``n`` messages, bulk-inserted."""
    context = init_workdir(workdir, admin_login="admin", clock=FrozenClock(NOW))
    engine = context.engine
    rng = random.Random(143)
    stamp = NOW.replace(tzinfo=None).isoformat(sep=" ")
    runs: list[tuple[int, str, int, datetime]] = []
    with engine.begin() as connection:
        for index in range(24):
            campaign = f"bench-{index:02d}"
            item = ITEMS[index % len(ITEMS)]
            definition = json.dumps({"id": campaign, "title": f"Bench {index}", "plan_item": item})
            connection.exec_driver_sql(
                "INSERT INTO campaigns (id, title, state, created_at, updated_at) VALUES (?, ?, 'approved', ?, ?)",
                (campaign, f"Bench {index}", stamp, stamp),
            )
            version = connection.exec_driver_sql(
                "INSERT INTO campaign_versions (campaign_id, number, content_hash, definition, templates,"
                " source_path, source_text, status, created_by, created_at, required_approvals)"
                " VALUES (?, 1, 'x', ?, '{}', 'bench.yaml', '', 'approved', 'admin', ?, 1)",
                (campaign, definition, stamp),
            ).lastrowid
            start = datetime(YEAR, 1 + index // 2, 3 + 14 * (index % 2), 2, 0, tzinfo=UTC).replace(
                tzinfo=None
            )
            run = connection.exec_driver_sql(
                "INSERT INTO campaign_runs (campaign_id, version_id, occurrence_at, trigger, status,"
                " planned_messages, plan_checkpoint, created_at) VALUES (?, ?, ?, 'manual', 'completed', 0, 0, ?)",
                (campaign, version, start.isoformat(sep=" "), stamp),
            ).lastrowid
            assert version is not None and run is not None
            runs.append((run, campaign, version, start))
    weights = [share for _, share, _, _ in OUTCOMES]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        # The messages' indexes are dropped for the load and built again after it: an index built once over
        # sorted keys costs a fraction of one updated at random by every row (the addresses' keys are random).
        indexes = [sql for (sql,) in cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL"
        ).fetchall()]  # fmt: skip
        for sql in indexes:
            cursor.execute("DROP INDEX " + sql.split(" ON ")[0].split()[-1])
        rows: list[tuple[Any, ...]] = []
        for number in range(n):
            run, campaign, version, start = runs[number % len(runs)]
            status, _, accepted, reason = rng.choices(OUTCOMES, weights)[0]
            sms = rng.random() < 0.7
            person = rng.randrange(PEOPLE)
            address = f"+8491{person:07d}" if sms else f"cong.dan{person}@example.vn"
            created = start + timedelta(seconds=rng.randrange(3 * 86400))
            sent = created + timedelta(seconds=rng.randrange(1, 30)) if accepted else None
            final = (
                sent + timedelta(seconds=rng.randrange(2, 900)) if sent and status == "delivered" else None
            )
            rows.append((
                f"b:{number}", "campaign", run, campaign, version, "sms" if sms else "email",
                "sms_main" if sms else "mail", address, address, "public_information", status, reason,
                "x", "{}", "gsm7" if sms else None, 2 if sms else None, 1540 if sms and accepted else None,
                created.isoformat(sep=" "), sent.isoformat(sep=" ") if sent else None,
                final.isoformat(sep=" ") if final else None,
            ))  # fmt: skip
            if len(rows) == BATCH:
                _insert(cursor, rows)
                rows = []
        if rows:
            _insert(cursor, rows)
        for sql in indexes:
            cursor.execute(sql)
        raw.commit()
    finally:
        raw.close()
    context.close()
    return {"messages": n}


def _insert(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    cursor.executemany(
        "INSERT INTO messages (idempotency_key, kind, run_id, campaign_id, version_id, channel, provider, address,"
        " address_key, purpose, status, hold, reason, attempts, body, context, encoding, segments, cost,"
        " parts_total, parts_delivered, created_at, sent_at, final_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 1, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
        rows,
    )


def _rollup(workdir: Path, n: int) -> dict[str, Any]:
    context = AppContext.load(workdir / "broadcaster.toml", clock=FrozenClock(NOW))
    with context.sessions.begin() as session:
        result = rebuild(
            session, context.settings, start=date(YEAR, 1, 1), end=date(YEAR, 12, 31), clock=context.clock
        )
    context.close()
    return {"days": len(result.rebuilt), "frozen": len(result.newly_frozen)}


def _report(workdir: Path, n: int) -> dict[str, Any]:
    context = AppContext.load(workdir / "broadcaster.toml", clock=FrozenClock(NOW))
    settings = context.settings
    with context.readers() as session:
        report = build_report(
            session,
            settings,
            half_year(YEAR, 2, settings.reports),
            plan_from_settings(settings),
            clock=context.clock,
        )
    csv = render_csv(report)
    context.close()
    return {"planned": report.totals.planned, "people": report.totals.people, "csv_bytes": len(csv)}


def _retention(workdir: Path, n: int) -> dict[str, Any]:
    """Every message settled more than the period ago: one run blanks them all, in one transaction."""
    probe = AppContext.load(workdir / "broadcaster.toml", clock=FrozenClock(NOW))
    days = probe.settings.retention.personal_data_days
    probe.close()
    context = AppContext.load(
        workdir / "broadcaster.toml", clock=FrozenClock(NOW + timedelta(days=days + 60))
    )
    with context.sessions.begin() as session:
        result = apply_retention(session, settings=context.settings, clock=context.clock)
    context.close()
    return {"blanked": result.counts["messages"], "frozen_days": result.frozen_days}


PHASES: dict[str, phases.Phase] = {
    "seed": _seed,
    "rollup": _rollup,
    "report": _report,
    "retention": _retention,
    "report_after_retention": _report,
}


def main() -> None:
    phases.main("benchmarks.report_figures", __doc__, PHASES, default_n="1000000,100000", what="messages")


if __name__ == "__main__":
    main()
