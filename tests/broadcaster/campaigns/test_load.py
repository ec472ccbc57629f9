"""Loading campaign files: a changed file makes a new draft version with a snapshot, an unchanged one nothing."""

from __future__ import annotations

from pathlib import Path

import yaml

from broadcaster.campaigns.files import compute_content_hash
from broadcaster.campaigns.store import definition_of, get_version
from broadcaster.clock import FrozenClock
from broadcaster.context import AppContext
from broadcaster.db.models import Campaign, User
from broadcaster.vocabulary import CampaignState, VersionStatus
from tests.broadcaster.campaigns.steps import (
    CAMPAIGN,
    audit_trail,
    campaign,
    load,
    submit,
    versions,
)
from tests.broadcaster.conftest import database_dump, write_campaign


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
    assert state is not None
    assert state.state == CampaignState.DRAFT
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
    assert definition.id == CAMPAIGN
    assert definition.channels["sms"].unaccented is True
    entry = audit_trail(context)[-1]
    assert (entry.actor, entry.action, entry.at) == ("bien_tap", "campaign.load", clock.now())
    assert entry.details["version"] == 1
    assert entry.details["content_hash"] == outcome.content_hash


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
