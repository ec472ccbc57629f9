"""Submit, approve (four eyes, bound to the hash), reject. Every refused action leaves the database as it was."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster.campaigns import workflow
from broadcaster.clock import FrozenClock
from broadcaster.contacts.importer import ImportReport
from broadcaster.context import AppContext
from broadcaster.db.models import Approval, User
from broadcaster.errors import NotFound, StateError, UserError
from broadcaster.users import set_role
from broadcaster.vocabulary import CampaignState, Role, VersionStatus
from tests.broadcaster.campaigns.steps import (
    CAMPAIGN,
    approve,
    audit_trail,
    campaign,
    load,
    refused,
    reviewed_hash,
    run,
    submit,
    versions,
)
from tests.broadcaster.conftest import ADMIN_LOGIN, set_policy, write_campaign


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
    assert state.state == CampaignState.APPROVED
    assert state.approved_version_id == version.id
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
    assert entry.details["state"] == {"from": "draft", "to": "approved"}


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
        assert f"broadcaster campaigns preview {CAMPAIGN}" in message
        assert f"broadcaster status {CAMPAIGN}" in message
        refused(
            context,
            UserError,
            "--hash needs at least 8",
            partial(
                workflow.reject,
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
