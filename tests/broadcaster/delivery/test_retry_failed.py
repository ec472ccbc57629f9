"""``campaigns retry-failed``: a new run of the approved version to the recipients (contact and channel) whose
message in a run failed, through the real planner and peers: the consent screen still applies, a second retry
of the same run does not reach anyone a retry already reached, and a run with nothing left to retry is refused
without creating a run. Audited; editors and admins only, as ``send``."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from broadcaster.db.models import AuditEntry, CampaignRun
from broadcaster.errors import StateError, UserError
from broadcaster.outbox.retry_failed import RETRY_ACTION, RetryStart, retried_run, start_retry_run
from broadcaster.suppressing import suppress_address
from broadcaster.users import add_user
from broadcaster.vocabulary import MessageStatus, Role
from channels.sandbox.smtp import SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_operator_commands import Cli
from tests.broadcaster.delivery.workdir_files import citizens

S = MessageStatus


def retry(pipeline: Pipeline, campaign_id: str, source: int | None = None) -> RetryStart:
    pipeline.advance(minutes=1)  # a run per campaign and moment (the frozen clock does not move by itself)
    with pipeline.context.sessions.begin() as session:
        started = start_retry_run(
            session,
            campaign_id=campaign_id,
            source_run_id=source,
            actor=pipeline.editor,
            clock=pipeline.clock,
        )
    pipeline.plan(started.run_id)
    pipeline.drain()
    return started


def run_count(pipeline: Pipeline) -> int:
    with pipeline.context.readers() as session:
        return int(session.scalar(select(func.count()).select_from(CampaignRun)) or 0)


@pytest.fixture
def failed_run(make_pipeline: PipelineFactory) -> tuple[Pipeline, str, int, set[str]]:
    """An SMS + e-mail campaign sent to 9 people; every third MAIL FROM gets 451 and, with no back-off,
    ends technical_failure at once. Returns the pipeline, the campaign, the run and the failed addresses."""
    pipeline = make_pipeline(smtp=SmtpBehaviour(temporary_every=3), delivery={"retry_backoff": []})
    pipeline.add_contacts(citizens(9))
    campaign_id = pipeline.approved_campaign()
    run_id = pipeline.send(campaign_id)
    failed = {m.address for m in pipeline.messages(run_id) if m.status == S.TECHNICAL_FAILURE}
    assert 0 < len(failed) < 9
    assert all("@" in address for address in failed)  # only e-mail failed; every SMS went
    pipeline.smtp.behaviour = SmtpBehaviour()
    return pipeline, campaign_id, run_id, failed


def test_retry_failed_sends_again_only_to_the_failed_still_screened_and_only_once(
    failed_run: tuple[Pipeline, str, int, set[str]],
) -> None:
    pipeline, campaign_id, first, failed = failed_run
    refused = sorted(failed)[0]
    with pipeline.context.sessions.begin() as session:  # a hard bounce came in meanwhile
        suppress_address(
            session,
            channel="email",
            address=refused,
            reason="thư bị trả lại",
            source="test",
            now=pipeline.clock.now(),
        )
    mails = len(pipeline.smtp.received)

    started = retry(pipeline, campaign_id)

    assert (started.source_run_id, started.failed) == (first, len(failed))
    rows = pipeline.messages(started.run_id)
    assert {(m.channel, m.address, m.status) for m in rows} == {
        ("email", a, S.SUPPRESSED if a == refused else S.SENT) for a in failed
    }
    assert pipeline.smtp.wait_for_count(mails + len(failed) - 1)
    assert sorted(r for mail in pipeline.smtp.received[mails:] for r in mail.rcpt_tos) == sorted(
        failed - {refused}
    )
    with pipeline.context.readers() as session:
        run = session.get(CampaignRun, started.run_id)
        assert run is not None
        assert retried_run(run.trigger) == first

    # Retrying the same run again: those the retry reached are not sent to twice; only the suppressed one is
    # still failed, and the screen stops it again.
    again = retry(pipeline, campaign_id, first)
    assert again.failed == 1
    assert [(m.address, m.status) for m in pipeline.messages(again.run_id)] == [(refused, S.SUPPRESSED)]
    assert len(pipeline.smtp.received) == mails + len(failed) - 1

    # The retry run itself has nothing that failed: refused, and no run is created.
    runs = run_count(pipeline)
    with pytest.raises(StateError, match="has no failed message left to send again"):
        retry(pipeline, campaign_id, started.run_id)
    assert run_count(pipeline) == runs
    with pipeline.context.readers() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == RETRY_ACTION)))
    assert [(e.actor, e.details["retries_run"], e.details["failed"]) for e in entries] == [
        (pipeline.editor.login, first, len(failed)),
        (pipeline.editor.login, first, 1),
    ]


def test_retry_failed_refuses_another_campaigns_run(failed_run: tuple[Pipeline, str, int, set[str]]) -> None:
    pipeline, _campaign_id, first, _failed = failed_run
    other = pipeline.approved_campaign(id="chien-dich-khac")
    runs = run_count(pipeline)
    with pytest.raises(UserError, match=f"--run {first}"):
        retry(pipeline, other, first)
    with pytest.raises(StateError, match="has no run to send again yet"):
        retry(pipeline, other)
    assert run_count(pipeline) == runs


def test_the_command_is_for_editors_and_admins_and_audited(
    failed_run: tuple[Pipeline, str, int, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, campaign_id, first, failed = failed_run
    with pipeline.context.sessions.begin() as session:
        add_user(session, actor=ADMIN_LOGIN, login="kiem_toan", role=Role.AUDITOR, clock=pipeline.clock)
    cli = Cli(pipeline, monkeypatch)
    runs = run_count(pipeline)
    cli("campaigns", "retry-failed", campaign_id, user="kiem_toan", expect=1)
    assert run_count(pipeline) == runs

    pipeline.advance(minutes=1)
    said = cli("campaigns", "retry-failed", campaign_id, "--run", str(first))
    assert f"(of run {first}): {len(failed)} failed message(s) planned again" in said
    assert run_count(pipeline) == runs + 1
    # A second retry before the first is planned would find the same failures: refused until it is.
    refused = cli("campaigns", "retry-failed", campaign_id, "--run", str(first), expect=1)
    assert f"retry run {runs + 1} of run {first} is being planned" in refused
    assert run_count(pipeline) == runs + 1
    pipeline.plan(runs + 1)
    pipeline.drain()
    assert {m.status for m in pipeline.messages(runs + 1)} == {S.SENT}
    refused = cli("campaigns", "retry-failed", campaign_id, "--run", str(first), expect=1)
    assert "has no failed message left to send again" in refused
    with pipeline.context.readers() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == RETRY_ACTION)).one()
    assert (entry.actor, entry.details["run_id"], entry.details["failed"]) == (
        pipeline.editor.login,
        runs + 1,
        len(failed),
    )
