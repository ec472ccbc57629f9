"""Campaign versions and approval: load, submit, approve (four eyes, hash-bound), reject, schedule, pause,
resume, cancel. Every refused action leaves the database exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from broadcaster.campaigns import workflow
from broadcaster.campaigns.files import ProviderInfo, compute_content_hash, load_campaign_file
from broadcaster.campaigns.store import LoadOutcome, definition_of, get_version, load_bundle
from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.models import Approval, AuditEntry, Campaign, CampaignRun, CampaignVersion, Message, User
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.settings import Settings
from broadcaster.status import campaign_status
from broadcaster.users import set_role
from broadcaster.vocabulary import CampaignState, MessageKind, MessageStatus, Role, RunStatus, VersionStatus
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump, set_policy, write_campaign

CAMPAIGN = "thong-bao-thu-nghiem"
WEEKLY = {"start": "2025-06-09 08:00", "rrule": "FREQ=WEEKLY;BYDAY=MO"}


@pytest.fixture
def people(create_user: Callable[..., User]) -> dict[str, User]:
    return {
        "editor": create_user(role=Role.EDITOR, login="bien_tap"),
        "approver": create_user(role=Role.APPROVER, login="phe_duyet"),
        "approver2": create_user(role=Role.APPROVER, login="pho_giam_doc"),
        "auditor": create_user(role=Role.AUDITOR, login="kiem_toan"),
    }


@pytest.fixture
def campaign_file(workdir: Path) -> Path:
    return write_campaign(workdir)


def load(context: AppContext, path: Path, *, actor: str = "bien_tap") -> LoadOutcome:
    providers = {
        name: ProviderInfo(name=name, channel=p.channel) for name, p in context.settings.providers.items()
    }
    bundle, problems = load_campaign_file(path, templates_dir=context.templates_dir, providers=providers)
    assert problems == [], problems
    assert bundle is not None
    with context.sessions.begin() as session:
        return load_bundle(session, bundle, actor=actor, clock=context.clock)


def run(context: AppContext, action: Callable[[Session], Any]) -> Any:
    with context.sessions.begin() as session:
        return action(session)


def refused(context: AppContext, error: type[Exception], match: str, action: Callable[[Session], Any]) -> str:
    """Run ``action`` in a transaction, expect ``error``, and prove the database did not change."""
    before = database_dump(context.engine)
    with pytest.raises(error, match=match) as caught, context.sessions.begin() as session:
        action(session)
    assert database_dump(context.engine) == before
    return str(caught.value)


def submit(
    context: AppContext, user: User, *, settings: Settings | None = None, reason: str | None = None
) -> Any:
    return run(
        context,
        lambda s: workflow.submit(
            s,
            campaign_id=CAMPAIGN,
            actor=user,
            settings=settings or context.settings,
            clock=context.clock,
            reason=reason,
        ),
    )


def reviewed_hash(session: Session, number: int | None = None) -> str:
    """What an approver copies from ``preview``: a prefix of the version's content hash."""
    return get_version(session, CAMPAIGN, number).content_hash[:12]


def approve(context: AppContext, user: User, **kwargs: Any) -> Callable[[Session], Any]:
    def action(s: Session) -> Any:
        kwargs.setdefault("content_hash", reviewed_hash(s, kwargs.get("version_number")))
        return workflow.approve(s, campaign_id=CAMPAIGN, actor=user, clock=context.clock, **kwargs)

    return action


def versions(context: AppContext) -> list[tuple[int, str]]:
    with context.sessions() as session:
        return [
            (v.number, v.status.value)
            for v in session.scalars(select(CampaignVersion).order_by(CampaignVersion.number))
        ]


def campaign(context: AppContext) -> Campaign:
    with context.sessions() as session:
        found = session.get(Campaign, CAMPAIGN)
    assert found is not None
    return found


def audit_trail(context: AppContext) -> list[AuditEntry]:
    with context.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.subject_type == "campaign").order_by(AuditEntry.id)
            )
        )


def approved_campaign(context: AppContext, people: dict[str, User], path: Path) -> None:
    load(context, path)
    submit(context, people["editor"])
    run(context, approve(context, people["approver"]))


# --- loading -------------------------------------------------------------------------------------------


def test_load_creates_a_draft_with_a_snapshot_under_its_hash(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    outcome = load(context, campaign_file)
    assert (outcome.campaign_id, outcome.version, outcome.status, outcome.superseded) == (
        CAMPAIGN,
        1,
        "created",
        (),
    )
    with context.sessions() as session:
        stored = get_version(session, CAMPAIGN, 1)
        state = session.get(Campaign, CAMPAIGN)
    assert state is not None and state.state == CampaignState.DRAFT
    assert state.title == "Thông báo thử nghiệm tiếp nhận hồ sơ trực tuyến"
    assert stored.status == VersionStatus.DRAFT
    assert (stored.created_by, stored.created_at) == ("bien_tap", clock.now())
    assert set(stored.templates) == {
        "sms/thu-nghiem.txt.j2",
        "email/thu-nghiem.subject.j2",
        "email/thu-nghiem.txt.j2",
    }
    assert "thông báo" in stored.templates["sms/thu-nghiem.txt.j2"]
    assert stored.source_text == campaign_file.read_text(encoding="utf-8")
    assert stored.content_hash == outcome.content_hash
    assert (
        compute_content_hash(definition=stored.definition, templates=stored.templates) == stored.content_hash
    )
    # The snapshot reads back as the same definition (and e-mail gets no SMS-only options by accident).
    definition = definition_of(stored)
    assert definition.id == CAMPAIGN and definition.channels["sms"].unaccented is True
    entry = audit_trail(context)[-1]
    assert (entry.actor, entry.action, entry.at) == ("bien_tap", "campaign.load", clock.now())
    assert entry.details["version"] == 1 and entry.details["content_hash"] == outcome.content_hash


def test_loading_an_unchanged_file_changes_nothing(
    context: AppContext, people: dict[str, User], campaign_file: Path, workdir: Path
) -> None:
    first = load(context, campaign_file)
    before = database_dump(context.engine)
    again = load(context, campaign_file)
    assert (again.status, again.version, again.content_hash) == ("unchanged", 1, first.content_hash)
    # Key order and comments are not content: the hash is over the parsed definition.
    original = campaign_file.read_text(encoding="utf-8")
    reordered = "# ghi chú\n" + yaml.safe_dump(yaml.safe_load(original), allow_unicode=True, sort_keys=True)
    assert reordered.split("\n")[1] != original.split("\n")[0]
    campaign_file.write_text(reordered, encoding="utf-8")
    assert load(context, campaign_file).status == "unchanged"
    assert database_dump(context.engine) == before


def test_a_changed_template_makes_a_new_version_and_supersedes_the_draft(
    context: AppContext, people: dict[str, User], campaign_file: Path, workdir: Path
) -> None:
    first = load(context, campaign_file)
    write_campaign(workdir, sms_text="{{ org.short_name }}: lịch tiếp dân thay đổi từ {{ vars.ngay }}.")
    second = load(context, campaign_file)
    assert (second.status, second.version, second.superseded) == ("new_version", 2, (1,))
    assert second.content_hash != first.content_hash
    assert versions(context) == [(1, "superseded"), (2, "draft")]
    with context.sessions() as session:
        old, new = get_version(session, CAMPAIGN, 1), get_version(session, CAMPAIGN, 2)
    # Each version keeps its own snapshot.
    assert "tiếp nhận" in old.templates["sms/thu-nghiem.txt.j2"]
    assert "lịch tiếp dân" in new.templates["sms/thu-nghiem.txt.j2"]


def test_a_changed_definition_supersedes_a_submitted_version(
    context: AppContext, people: dict[str, User], campaign_file: Path, workdir: Path
) -> None:
    load(context, campaign_file)
    submit(context, people["editor"])
    write_campaign(workdir, title="Thông báo (bản sửa)")
    assert load(context, campaign_file).superseded == (1,)
    assert versions(context) == [(1, "superseded"), (2, "draft")]
    assert campaign(context).title == "Thông báo (bản sửa)"


# --- submit and approve --------------------------------------------------------------------------------


def test_submit_counts_the_audience_and_is_audited(
    context: AppContext,
    people: dict[str, User],
    campaign_file: Path,
    contacts: ImportReport,
    clock: FrozenClock,
) -> None:
    load(context, campaign_file)
    clock.advance(timedelta(minutes=5))
    version = submit(context, people["editor"], reason="xin duyệt")
    assert (version.status, version.submitted_by, version.submitted_at) == (
        VersionStatus.SUBMITTED,
        "bien_tap",
        clock.now(),
    )
    assert version.audience_size == 11  # every stored contact gets the SMS or the e-mail (or both)
    assert version.required_approvals == 1
    entry = audit_trail(context)[-1]
    assert (entry.actor, entry.action, entry.reason, entry.at) == (
        "bien_tap",
        "campaign.submit",
        "xin duyệt",
        clock.now(),
    )
    assert entry.details["audience_size"] == 11


def test_only_a_draft_can_be_submitted(
    context: AppContext, people: dict[str, User], campaign_file: Path
) -> None:
    load(context, campaign_file)
    submit(context, people["editor"])
    refused(
        context,
        StateError,
        "version 1 is submitted; only a draft",
        lambda s: workflow.submit(
            s, campaign_id=CAMPAIGN, actor=people["editor"], settings=context.settings, clock=context.clock
        ),
    )


def test_unknown_campaign(context: AppContext, people: dict[str, User]) -> None:
    refused(
        context,
        NotFound,
        "no campaign 'khong-co'.*campaigns load",
        lambda s: workflow.submit(
            s, campaign_id="khong-co", actor=people["editor"], settings=context.settings, clock=context.clock
        ),
    )


def test_approval_by_another_user_binds_to_the_hash(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    outcome = load(context, campaign_file)
    submit(context, people["editor"])
    clock.advance(timedelta(hours=1))
    version = run(
        context,
        approve(context, people["approver"], content_hash=outcome.content_hash[:10].upper(), reason="đồng ý"),
    )
    assert version.status == VersionStatus.APPROVED
    state = campaign(context)
    assert state.state == CampaignState.APPROVED and state.approved_version_id == version.id
    with context.sessions() as session:
        approval = session.scalars(select(Approval)).one()
    assert (
        approval.user_login,
        approval.content_hash,
        approval.decision.value,
        approval.reason,
        approval.decided_at,
    ) == (
        "phe_duyet",
        outcome.content_hash,
        "approve",
        "đồng ý",
        clock.now(),
    )
    entry = audit_trail(context)[-1]
    assert (entry.actor, entry.action, entry.reason, entry.at) == (
        "phe_duyet",
        "campaign.approve",
        "đồng ý",
        clock.now(),
    )
    assert entry.details["complete"] is True


def test_approving_ones_own_submission_is_refused(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    load(context, campaign_file)
    submit(context, people["editor"])
    # The editor is given the approver role afterwards: still not allowed to approve their own submission.
    promoted = run(
        context, lambda s: set_role(s, actor=ADMIN_LOGIN, login="bien_tap", role=Role.APPROVER, clock=clock)
    )
    message = refused(context, StateError, "another user must approve it", approve(context, promoted))
    assert "you submitted version 1" in message
    refused(
        context,
        StateError,
        "you submitted",
        lambda s: workflow.reject(
            s, campaign_id=CAMPAIGN, actor=promoted, clock=clock, reason="thử", content_hash=reviewed_hash(s)
        ),
    )
    assert versions(context) == [(1, "submitted")]


def test_approving_with_the_hash_of_a_superseded_version_is_refused(
    context: AppContext, people: dict[str, User], campaign_file: Path, workdir: Path
) -> None:
    reviewed = load(context, campaign_file).content_hash  # what the approver previewed
    submit(context, people["editor"])
    write_campaign(workdir, sms_text="{{ org.short_name }}: nội dung đã sửa sau khi gửi duyệt.")
    load(context, campaign_file)
    submit(context, people["editor"])
    message = refused(
        context,
        StateError,
        "what you reviewed is stale",
        approve(context, people["approver"], content_hash=reviewed[:12]),
    )
    assert "version 2" in message
    refused(
        context,
        StateError,
        "version 1 is stale: version 2 was loaded",
        approve(context, people["approver"], version_number=1),
    )
    assert versions(context) == [(1, "superseded"), (2, "submitted")]


def test_a_version_loaded_after_submission_makes_the_submitted_one_stale(
    context: AppContext, people: dict[str, User], campaign_file: Path, workdir: Path
) -> None:
    first = load(context, campaign_file)
    submit(context, people["editor"])
    write_campaign(workdir, variables={"ngay": "15/07/2025", "thu_tuc": "cấp đổi giấy phép lái xe"})
    load(context, campaign_file)
    # The latest is a draft nobody submitted; the submitted one was superseded by the load.
    refused(context, StateError, "version 2 is draft, not submitted", approve(context, people["approver"]))
    refused(
        context,
        StateError,
        "stale",
        approve(context, people["approver"], version_number=1, content_hash=first.content_hash),
    )
    refused(
        context,
        StateError,
        "stale",
        lambda s: workflow.reject(
            s,
            campaign_id=CAMPAIGN,
            actor=people["approver"],
            clock=context.clock,
            reason="cũ",
            version_number=1,
            content_hash=first.content_hash,
        ),
    )


def test_a_short_hash_prefix_is_refused(
    context: AppContext, people: dict[str, User], campaign_file: Path
) -> None:
    outcome = load(context, campaign_file)
    submit(context, people["editor"])
    refused(
        context,
        UserError,
        "at least 8 characters",
        approve(context, people["approver"], content_hash=outcome.content_hash[:7]),
    )


def test_a_decision_without_the_hash_is_refused_and_says_where_to_find_it(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    load(context, campaign_file)
    submit(context, people["editor"])
    for missing in (None, "", "   "):
        message = refused(
            context,
            UserError,
            "--hash needs at least 8",
            approve(context, people["approver"], content_hash=missing),
        )
        assert (
            f"broadcaster campaigns preview {CAMPAIGN}" in message
            and f"broadcaster status {CAMPAIGN}" in message
        )
        refused(
            context,
            UserError,
            "--hash needs at least 8",
            lambda s, missing=missing: workflow.reject(
                s,
                campaign_id=CAMPAIGN,
                actor=people["approver"],
                clock=clock,
                reason="sai",
                content_hash=missing,
            ),
        )
    assert versions(context) == [(1, "submitted")]


def test_a_large_audience_needs_a_second_different_approver(
    context: AppContext, people: dict[str, User], campaign_file: Path, contacts: ImportReport
) -> None:
    set_policy(context, "second_approver_threshold", "10")
    load(context, campaign_file)
    version = submit(context, people["editor"])
    assert (version.audience_size, version.required_approvals) == (11, 2)

    first = run(context, approve(context, people["approver"]))
    assert first.status == VersionStatus.SUBMITTED
    assert campaign(context).state == CampaignState.DRAFT
    assert audit_trail(context)[-1].details["complete"] is False

    refused(context, StateError, "already approved version 1", approve(context, people["approver"]))
    # Nor can the first approver turn round and reject it: one decision per person and version.
    refused(
        context,
        StateError,
        "already approved version 1",
        lambda s: workflow.reject(
            s,
            campaign_id=CAMPAIGN,
            actor=people["approver"],
            clock=context.clock,
            reason="đổi ý",
            content_hash=reviewed_hash(s),
        ),
    )

    second = run(context, approve(context, people["approver2"]))
    assert second.status == VersionStatus.APPROVED
    assert campaign(context).state == CampaignState.APPROVED
    with context.sessions() as session:
        approvers = [a.user_login for a in session.scalars(select(Approval).order_by(Approval.id))]
    assert approvers == ["phe_duyet", "pho_giam_doc"]


def test_at_the_threshold_one_approver_is_enough(
    context: AppContext, people: dict[str, User], campaign_file: Path, contacts: ImportReport
) -> None:
    set_policy(context, "second_approver_threshold", "11")
    load(context, campaign_file)
    assert submit(context, people["editor"]).required_approvals == 1


def test_reject_needs_a_reason(
    context: AppContext, people: dict[str, User], campaign_file: Path, clock: FrozenClock
) -> None:
    load(context, campaign_file)
    submit(context, people["editor"])

    def reject(reason: str) -> Callable[[Session], Any]:
        return lambda s: workflow.reject(
            s,
            campaign_id=CAMPAIGN,
            actor=people["approver"],
            clock=clock,
            reason=reason,
            content_hash=reviewed_hash(s),
        )

    for empty in ("", "   "):
        refused(context, UserError, "needs a reason", reject(empty))
    version = run(context, reject("Thiếu số điện thoại đường dây nóng"))
    assert version.status == VersionStatus.REJECTED
    assert campaign(context).state == CampaignState.DRAFT
    entry = audit_trail(context)[-1]
    assert (entry.actor, entry.action, entry.reason) == (
        "phe_duyet",
        "campaign.reject",
        "Thiếu số điện thoại đường dây nóng",
    )
    # A rejected version cannot be approved afterwards; a changed file starts again.
    refused(context, StateError, "is rejected, not submitted", approve(context, people["approver2"]))


# --- schedule, pause, resume, cancel -------------------------------------------------------------------


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
    # A cancelled campaign's file cannot be loaded again under the same id.
    write_campaign(workdir, schedule=WEEKLY, title="Dùng lại")
    providers = {n: ProviderInfo(name=n, channel=p.channel) for n, p in context.settings.providers.items()}
    bundle, _ = load_campaign_file(
        workdir / "campaigns" / "tests" / f"{CAMPAIGN}.yaml",
        templates_dir=context.templates_dir,
        providers=providers,
    )
    assert bundle is not None
    refused(
        context,
        StateError,
        "is cancelled; give the file a new id",
        lambda s: load_bundle(s, bundle, actor="bien_tap", clock=clock),
    )


def campaign_status_of(context: AppContext) -> dict[str, Any]:
    with context.sessions() as session:
        return campaign_status(session, CAMPAIGN)


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
        {"cancelled_messages": 2},
    )
    summary = campaign_status_of(context)
    assert summary["messages"] == {"sms": {"cancelled": 2, "sent": 1}}
    assert summary["runs"][0]["status"] == "cancelled"
