"""``send --wait`` outside the campaign's send window says at once when the first messages go, and with
``--no-wait-window`` exits with its own code instead of waiting; ``messages`` shows each row's ``not_before``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.clock import FrozenClock, SystemClock
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignRun
from broadcaster.outbox.planner import plan_run
from broadcaster.outbox.queues import RecordingEnqueuer
from tests.broadcaster.conftest import FIXTURES, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN, CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # fixtures

SUNDAY_EVENING = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # 22:00 in Da Nang, after the window closed
NOTE = "outside the send window; first messages at 07:30 Monday 30/11 (Asia/Ho_Chi_Minh)"


def approved_campaign_with_window(cli: Cli, workdir: Path) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(
        workdir,
        schedule={"start": "2026-11-01 08:00", "window": {"start": "07:30", "end": "21:00"}},
    )
    [loaded] = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    cli("campaigns", "approve", CAMPAIGN, "--hash", loaded["content_hash"][:12], user="phe_duyet")


def test_send_wait_outside_the_window_says_when_and_can_exit_with_its_own_code(
    cli: Cli, context: AppContext, team: None, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    approved_campaign_with_window(cli, workdir)
    monkeypatch.setattr(SystemClock, "now", lambda self: SUNDAY_EVENING)

    result = cli("send", CAMPAIGN, "--wait", "--no-wait-window", user="bien_tap", expect=3)

    shown = one_line(result.stdout)
    assert NOTE in shown
    assert "stays queued" in shown
    with context.readers() as session:
        [run] = session.scalars(select(CampaignRun)).all()
    assert run.status.value == "planning"  # queued for the workers; nothing sent, nothing waited for

    # The rows wait for the window (not_before), and `messages` says until when.
    plan_run(
        context.sessions,
        run_id=run.id,
        settings=context.settings,
        clock=FrozenClock(SUNDAY_EVENING),
        enqueuer=RecordingEnqueuer(),
    )
    rows = cli.json("messages", "--run", str(run.id), user="kiem_toan")
    queued = [r for r in rows if r["status"] == "queued"]
    assert queued
    assert {r["not_before"] for r in queued} == {"2026-11-30T07:30:00+07:00"}
    table = one_line(cli("messages", "--run", str(run.id), user="kiem_toan").stdout)
    assert "not before" in table
    assert "2026-11-30T07:30:00+07:00" in table


def test_send_help_documents_the_exit_code(cli: Cli) -> None:
    shown = one_line(cli("send", "--help").stdout.replace("│", " "))  # rich draws the options in a box
    assert "--no-wait-window" in shown
    assert "exits with code 3" in shown
