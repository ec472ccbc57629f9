"""``broadcaster health``: one check per component against the real peers, and exit codes a container's
health check can use (0 healthy, 1 unhealthy, 3 degraded)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from broadcaster.clock import SystemClock
from broadcaster.db.models import Message
from broadcaster.lease import acquire
from broadcaster.observe.health import State, run_checks
from broadcaster.observe.heartbeat import record_beat
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.test_failures import email_campaign
from tests.broadcaster.delivery.workdir_files import citizens
from tests.broadcaster.test_cli import Cli


@pytest.fixture
def cli(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


def states(cli: Cli, *args: str, expect: int) -> dict[str, str]:
    report = json.loads(cli("health", "--json", *args, expect=expect).stdout)
    return {check["name"]: check["state"] for check in report["checks"]}


def test_a_container_checks_only_what_it_needs_and_a_tick_that_never_ran_is_unhealthy(
    pipeline: Pipeline, cli: Cli
) -> None:
    assert states(cli, "--only", "database,broker,beat", expect=1) == {
        "database": "ok",
        "broker": "ok",
        "beat": "unhealthy",
    }
    record_beat(pipeline.context.sessions, clock=SystemClock())
    assert states(cli, "--only", "database,broker,beat", expect=0) == {
        "database": "ok",
        "broker": "ok",
        "beat": "ok",
    }
    result = cli("health", "--only", "database,brokr", expect=2)
    assert "brokr" in result.stderr


def test_each_provider_is_checked_where_it_lives(pipeline: Pipeline, cli: Cli) -> None:
    record_beat(pipeline.context.sessions, clock=SystemClock())
    # No gateway holds the SMPP account; the sandbox relay answers EHLO.
    assert states(cli, "--only", "providers", expect=1) == {"mail": "ok", "sms_main": "unhealthy"}

    held = acquire(
        pipeline.context.sessions, "gateway:sms_main", "gw:1", clock=SystemClock(), ttl=timedelta(minutes=5)
    )
    assert held
    assert states(cli, expect=0) == {
        "database": "ok",
        "broker": "ok",
        "mail": "ok",
        "sms_main": "ok",
        "beat": "ok",
        "backlog": "ok",
    }

    pipeline.smtp.stop()
    report = json.loads(cli("health", "--json", "--only", "providers", expect=1).stdout)
    [mail] = [check for check in report["checks"] if check["name"] == "mail"]
    assert mail["state"] == "unhealthy"
    assert f"127.0.0.1:{pipeline.smtp.port}" in mail["detail"]


def test_the_backlog_counts_due_messages_only_and_is_degraded_then_unhealthy(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(3))
    run_id = pipeline.start_run(email_campaign(pipeline))
    pipeline.plan(run_id)
    limits = pipeline.context.settings.health

    def backlog() -> State:
        [check] = run_checks(pipeline.context, ("backlog",))
        return check.state

    assert backlog() is State.OK
    pipeline.advance(seconds=limits.backlog_degraded_seconds)
    assert backlog() is State.DEGRADED
    pipeline.advance(seconds=limits.backlog_unhealthy_seconds)
    assert backlog() is State.UNHEALTHY

    # Deferred to a later hour (quiet hours, back-off): not a backlog until then.
    later = pipeline.clock.now() + timedelta(hours=1)
    with pipeline.context.sessions.begin() as session:
        session.execute(update(Message).where(Message.run_id == run_id).values(not_before=later))
    assert backlog() is State.OK
    pipeline.advance(seconds=3600 + limits.backlog_degraded_seconds)
    assert backlog() is State.DEGRADED


def test_degraded_exits_3_unless_told_it_is_fine(
    pipeline: Pipeline, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.add_contacts(citizens(2))
    pipeline.plan(pipeline.start_run(email_campaign(pipeline)))  # queued at the frozen clock's hour: old
    monkeypatch.setenv("BROADCASTER_HEALTH__BACKLOG_UNHEALTHY_SECONDS", str(10 * 365 * 86400))
    assert states(cli, "--only", "backlog", expect=3) == {"backlog": "degraded"}
    assert states(cli, "--only", "backlog", "--degraded-ok", expect=0) == {"backlog": "degraded"}
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    table = cli("health", "--only", "backlog", expect=3).stdout
    assert "hàng tồn đọng" in table
    assert "Tổng thể: suy giảm" in table


def test_a_database_that_cannot_be_opened_is_reported_not_raised(
    pipeline: Pipeline, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROADCASTER_DATABASE__URL", "sqlite:////khong-co-thu-muc/broadcaster.sqlite3")
    report = json.loads(cli("health", "--json", "--only", "database,beat", expect=1).stdout)
    assert [(c["name"], c["state"]) for c in report["checks"]] == [
        ("database", "unhealthy"),
        ("beat", "unhealthy"),
    ]
    assert "unable to open database file" in report["checks"][0]["detail"]
