"""Schedule, pause, resume, cancel, with who, when and why; a tampered snapshot is refused everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, load_campaign_file
from broadcaster.campaigns.store import get_version, load_bundle
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import CampaignRun, CampaignVersion, Message, User
from broadcaster.errors import StateError
from broadcaster.vocabulary import CampaignState, MessageKind, MessageStatus, RunStatus
from tests.broadcaster.campaigns.steps import (
    CAMPAIGN,
    WEEKLY,
    approve,
    approved_campaign,
    audit_trail,
    campaign,
    campaign_status_of,
    load,
    refused,
    run,
    submit,
    versions,
)
from tests.broadcaster.conftest import write_campaign


def test_schedule_pause_resume_cancel_with_who_when_why(
    context: AppContext, people: dict[str, User], workdir: Path, clock: FrozenClock
) -> None:
    approved_campaign(context, people, write_campaign(workdir, schedule=WEEKLY))
    editor, approver = people["editor"], people["approver"]

    clock.advance(timedelta(minutes=1))
    scheduled = run(
        context,
        lambda s: workflow.schedule(
            s, campaign_id=CAMPAIGN, actor=editor, clock=clock, reason="theo kế hoạch"
        ),
    )
    assert scheduled.state == CampaignState.SCHEDULED
    assert scheduled.next_occurrence_at == datetime(2025, 6, 9, 1, 0, tzinfo=UTC)  # Monday 08:00 in Da Nang
    t_schedule = clock.now()

    clock.advance(timedelta(minutes=1))
    run(
        context,
        lambda s: workflow.pause(s, campaign_id=CAMPAIGN, actor=approver, clock=clock, reason="chờ ý kiến"),
    )
    assert campaign(context).state == CampaignState.PAUSED
    t_pause = clock.now()
    refused(
        context,
        StateError,
        "is paused; it cannot be paused",
        lambda s: workflow.pause(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
    )
    assert campaign_status_of(context)["paused_reason"] == "chờ ý kiến"

    clock.advance(timedelta(minutes=1))
    resumed = run(
        context,
        lambda s: workflow.resume(s, campaign_id=CAMPAIGN, actor=editor, clock=clock, reason="đã có ý kiến"),
    )
    assert resumed.state == CampaignState.SCHEDULED  # back to where it was paused
    t_resume = clock.now()
    refused(
        context,
        StateError,
        "is scheduled, not paused",
        lambda s: workflow.resume(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
    )

    clock.advance(timedelta(minutes=1))
    cancelled = run(
        context, lambda s: workflow.cancel(s, campaign_id=CAMPAIGN, actor=approver, clock=clock, reason="hủy")
    )
    assert (cancelled.state, cancelled.next_occurrence_at) == (CampaignState.CANCELLED, None)
    t_cancel = clock.now()
    for action in (
        lambda s: workflow.cancel(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
        lambda s: workflow.pause(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
        lambda s: workflow.schedule(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
    ):
        refused(context, StateError, "cancelled", action)

    trail = [(e.action, e.actor, e.at, e.reason) for e in audit_trail(context)][-4:]
    assert trail == [
        ("campaign.schedule", "bien_tap", t_schedule, "theo kế hoạch"),
        ("campaign.pause", "phe_duyet", t_pause, "chờ ý kiến"),
        ("campaign.resume", "bien_tap", t_resume, "đã có ý kiến"),
        ("campaign.cancel", "phe_duyet", t_cancel, "hủy"),
    ]
    states = [e.details["state"] for e in audit_trail(context)[-4:]]
    assert states == [
        {"from": "approved", "to": "scheduled"},
        {"from": "scheduled", "to": "paused"},
        {"from": "paused", "to": "scheduled"},
        {"from": "scheduled", "to": "cancelled"},
    ]
    # A cancelled campaign's file cannot be loaded again under the same id.
    write_campaign(workdir, schedule=WEEKLY, title="Dùng lại")
    bundle, _ = load_campaign_file(
        workdir / "campaigns" / "tests" / f"{CAMPAIGN}.yaml",
        templates_dir=context.templates_dir,
        providers=ProviderInfo.all_from(context.settings),
    )
    assert bundle is not None
    refused(
        context,
        StateError,
        "is cancelled; give the file a new id",
        lambda s: load_bundle(s, bundle, actor="bien_tap", clock=clock),
    )


def test_engine_pause_is_recorded_under_the_system_name(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    approved_campaign(context, people, campaign_file)
    run(
        context,
        lambda s: workflow.pause(
            s, campaign_id=CAMPAIGN, actor=None, clock=clock, reason="50% lỗi", system="auto-pause"
        ),
    )
    entry = audit_trail(context)[-1]
    assert (entry.actor, entry.action, entry.reason) == ("auto-pause", "campaign.pause", "50% lỗi")
    resumed = run(
        context, lambda s: workflow.resume(s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock)
    )
    assert resumed.state == CampaignState.APPROVED


def test_scheduling_needs_an_approved_campaign_with_a_schedule(
    context: AppContext, people: dict[str, User], workdir: Path, clock: FrozenClock
) -> None:
    editor = people["editor"]
    load(context, write_campaign(workdir))
    refused(
        context,
        StateError,
        "is draft; only an approved campaign can be scheduled",
        lambda s: workflow.schedule(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
    )
    submit(context, editor)
    run(context, approve(context, people["approver"]))
    refused(
        context,
        StateError,
        "has no schedule section",
        lambda s: workflow.schedule(s, campaign_id=CAMPAIGN, actor=editor, clock=clock),
    )


def test_a_schedule_that_is_over_cannot_be_scheduled(
    context: AppContext, people: dict[str, User], workdir: Path, clock: FrozenClock
) -> None:
    past = {**WEEKLY, "start": "2025-01-06 08:00", "until": "2025-03-31"}
    approved_campaign(context, people, write_campaign(workdir, schedule=past))
    refused(
        context,
        StateError,
        "no occurrence left",
        lambda s: workflow.schedule(s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock),
    )


def test_approving_a_new_version_of_a_scheduled_campaign_replaces_the_old(
    context: AppContext, people: dict[str, User], workdir: Path, clock: FrozenClock
) -> None:
    path = write_campaign(workdir, schedule=WEEKLY)
    approved_campaign(context, people, path)
    run(context, lambda s: workflow.schedule(s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock))
    write_campaign(workdir, schedule={**WEEKLY, "rrule": "FREQ=WEEKLY;BYDAY=WE"})
    load(context, path)
    # Loading a new draft does not touch the approved version that is being sent.
    assert versions(context) == [(1, "approved"), (2, "draft")]
    submit(context, people["editor"])
    run(context, approve(context, people["approver"]))
    assert versions(context) == [(1, "superseded"), (2, "approved")]
    state = campaign(context)
    assert state.state == CampaignState.SCHEDULED
    assert state.next_occurrence_at == datetime(
        2025, 6, 11, 1, 0, tzinfo=UTC
    )  # first Wednesday after start, 08:00
    status = campaign_status_of(context)
    assert status["approved_version"] == 2
    assert [d["by"] for d in status["versions"][1]["decisions"]] == ["phe_duyet"]


# --- tampering -----------------------------------------------------------------------------------------


def _tamper(context: AppContext, number: int) -> None:
    with context.sessions.begin() as session:
        session.execute(
            update(CampaignVersion)
            .where(CampaignVersion.campaign_id == CAMPAIGN, CampaignVersion.number == number)
            .values(templates={"sms/thu-nghiem.txt.j2": "Trúng thưởng! Gọi ngay 1900xxxx"})
        )


def test_a_tampered_snapshot_is_refused_everywhere(
    context: AppContext, people: dict[str, User], workdir: Path, clock: FrozenClock
) -> None:
    path = write_campaign(workdir, schedule=WEEKLY)
    load(context, path)
    _tamper(context, 1)
    refused(
        context,
        StateError,
        "stored content does not match its hash",
        lambda s: workflow.submit(
            s, campaign_id=CAMPAIGN, actor=people["editor"], settings=context.settings, clock=clock
        ),
    )


def test_a_snapshot_tampered_after_submission_or_approval_is_refused(
    context: AppContext, people: dict[str, User], workdir: Path, clock: FrozenClock
) -> None:
    path = write_campaign(workdir, schedule=WEEKLY)
    load(context, path)
    submit(context, people["editor"])
    with context.sessions() as session:
        original = get_version(session, CAMPAIGN, 1).templates
    _tamper(context, 1)
    refused(context, StateError, "does not match its hash", approve(context, people["approver"]))
    with context.sessions.begin() as session:
        session.execute(update(CampaignVersion).values(templates=original))
    run(context, approve(context, people["approver"]))
    _tamper(context, 1)
    refused(
        context,
        StateError,
        "does not match its hash",
        lambda s: workflow.schedule(s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock),
    )


# --- cancelling a campaign that is sending -------------------------------------------------------------


def test_cancel_stops_queued_messages_and_open_runs(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    approved_campaign(context, people, campaign_file)
    now = clock.now()
    with context.sessions.begin() as session:
        version = get_version(session, CAMPAIGN, 1)
        run_row = CampaignRun(
            campaign_id=CAMPAIGN,
            version_id=version.id,
            occurrence_at=now,
            trigger="manual",
            status=RunStatus.SENDING,
            created_at=now,
        )
        session.add(run_row)
        session.flush()
        for number, status in enumerate([MessageStatus.QUEUED, MessageStatus.QUEUED, MessageStatus.SENT]):
            session.add(
                Message(
                    idempotency_key=f"{run_row.id}:sms:{number}",
                    kind=MessageKind.CAMPAIGN,
                    run_id=run_row.id,
                    campaign_id=CAMPAIGN,
                    version_id=version.id,
                    channel="sms",
                    provider="sms_main",
                    address=f"+8491234500{number}",
                    status=status,
                    body="SKHCN thong bao",
                    created_at=now,
                )
            )
    clock.advance(timedelta(minutes=3))
    run(
        context,
        lambda s: workflow.cancel(
            s, campaign_id=CAMPAIGN, actor=people["editor"], clock=clock, reason="sai nội dung"
        ),
    )
    with context.sessions() as session:
        messages = list(session.scalars(select(Message).order_by(Message.id)))
        stored_run = session.scalars(select(CampaignRun)).one()
    assert [(m.status, m.reason) for m in messages] == [
        (MessageStatus.CANCELLED, "campaign cancelled"),
        (MessageStatus.CANCELLED, "campaign cancelled"),
        (MessageStatus.SENT, None),  # already on the wire: left as it is
    ]
    assert messages[0].final_at == clock.now()
    assert (stored_run.status, stored_run.finished_at) == (RunStatus.CANCELLED, clock.now())
    entry = audit_trail(context)[-1]
    assert (entry.action, entry.reason, entry.details) == (
        "campaign.cancel",
        "sai nội dung",
        {"cancelled_messages": 2, "state": {"from": "approved", "to": "cancelled"}},
    )
    summary = campaign_status_of(context)
    assert summary["messages"] == {"sms": {"cancelled": 2, "sent": 1}}
    assert summary["runs"][0]["status"] == "cancelled"
