"""Campaign versions in the database: loading a changed file makes a new draft version with a snapshot.

A version keeps its definition and the text of every template it uses, under the content hash computed
when the files were read. Approval binds to that hash; sending renders from the snapshot, never the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.campaigns.files import CampaignBundle, compute_content_hash
from broadcaster.campaigns.schema import CampaignDefinition, ChannelSpec
from broadcaster.clock import Clock
from broadcaster.db.models import Campaign, CampaignVersion
from broadcaster.errors import NotFound, StateError
from broadcaster.i18n import gettext as _
from broadcaster.vocabulary import CampaignState, VersionStatus


@dataclass(frozen=True)
class LoadOutcome:
    campaign_id: str
    version: int
    status: str  # created | new_version | unchanged
    content_hash: str
    superseded: tuple[int, ...] = ()


def get_campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(
            _("no campaign '%(campaign)s'; load its file with `broadcaster campaigns load PATH`")
            % {"campaign": campaign_id}
        )
    return campaign


def latest_version(session: Session, campaign_id: str) -> CampaignVersion:
    version = session.scalar(
        select(CampaignVersion)
        .where(CampaignVersion.campaign_id == campaign_id)
        .order_by(CampaignVersion.number.desc())
        .limit(1)
    )
    if version is None:
        raise NotFound(_("campaign '%(campaign)s' has no version") % {"campaign": campaign_id})
    return version


def get_version(session: Session, campaign_id: str, number: int | None) -> CampaignVersion:
    if number is None:
        return latest_version(session, campaign_id)
    version = session.scalar(
        select(CampaignVersion).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.number == number
        )
    )
    if version is None:
        raise NotFound(
            _("campaign '%(campaign)s' has no version %(number)s")
            % {"campaign": campaign_id, "number": number}
        )
    return version


def definition_of(version: CampaignVersion) -> CampaignDefinition:
    # The snapshot is the full dump (its hash must be re-computable), so every channel carries every option
    # at its default; the schema refuses SMS-only options *set* on e-mail, so defaults are dropped first.
    data = dict(version.definition)
    data["channels"] = {
        name: {
            key: value
            for key, value in spec.items()
            if key not in ChannelSpec.model_fields
            or ChannelSpec.model_fields[key].is_required()
            or value != ChannelSpec.model_fields[key].default
        }
        for name, spec in data.get("channels", {}).items()
    }
    return CampaignDefinition.model_validate(data)


def verify_snapshot(version: CampaignVersion) -> None:
    """Refuse to use a snapshot whose stored content no longer matches its hash (tampering, corruption)."""
    actual = compute_content_hash(definition=version.definition, templates=version.templates)
    if actual != version.content_hash:
        raise StateError(
            _(
                "campaign '%(campaign)s' version %(number)s: stored content does not match its hash "
                "(%(actual)s ≠ %(hash)s); reload the campaign file and approve again"
            )
            % {
                "campaign": version.campaign_id,
                "number": version.number,
                "actual": actual[:12],
                "hash": version.content_hash[:12],
            }
        )


def load_bundle(session: Session, bundle: CampaignBundle, *, actor: str, clock: Clock) -> LoadOutcome:
    definition = bundle.definition
    now = clock.now()
    campaign = session.get(Campaign, definition.id)
    snapshot: dict[str, Any] = definition.model_dump(mode="json")
    superseded: list[int] = []
    if campaign is None:
        campaign = Campaign(
            id=definition.id,
            title=definition.title,
            state=CampaignState.DRAFT,
            created_at=now,
            updated_at=now,
        )
        session.add(campaign)
        number, status = 1, "created"
    else:
        if campaign.state == CampaignState.CANCELLED:
            raise StateError(
                _("campaign '%(campaign)s' is cancelled; give the file a new id to reuse it")
                % {"campaign": definition.id}
            )
        latest = latest_version(session, definition.id)
        if latest.content_hash == bundle.content_hash:
            return LoadOutcome(definition.id, latest.number, "unchanged", latest.content_hash)
        number, status = latest.number + 1, "new_version"
        for old in session.scalars(
            select(CampaignVersion).where(
                CampaignVersion.campaign_id == definition.id,
                CampaignVersion.status.in_([VersionStatus.DRAFT, VersionStatus.SUBMITTED]),
            )
        ):
            old.status = VersionStatus.SUPERSEDED
            superseded.append(old.number)
        campaign.title = definition.title
        campaign.updated_at = now
    version = CampaignVersion(
        campaign_id=definition.id,
        number=number,
        content_hash=bundle.content_hash,
        definition=snapshot,
        templates=dict(bundle.templates),
        source_path=str(bundle.source),
        source_text=bundle.source_text,
        status=VersionStatus.DRAFT,
        created_by=actor,
        created_at=now,
        required_approvals=1,
    )
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="campaign.load",
        subject_type="campaign",
        subject_id=definition.id,
        at=now,
        details={
            "version": number,
            "content_hash": bundle.content_hash,
            "source": str(bundle.source),
            "superseded": superseded,
        },
    )
    return LoadOutcome(definition.id, number, status, bundle.content_hash, tuple(superseded))
