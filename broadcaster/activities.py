"""The plan's communication activities: those staff record (a press briefing, a dialogue, the TV segment, printed
materials) and the broadcast runs, each counted under a plan item.

Recording checks everything first (plan item, agency, kind, date, evidence) and stores nothing when one is
wrong. An evidence file is copied into the working directory's ``evidence/`` under its SHA-256, which the row
keeps, so a later edit of the original cannot change what was filed. A run counts as an activity of its
campaign's plan item on the local day it started; its agency is the item's lead agency from the plan (agency
names come from the settings, never from campaign text).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.campaigns.plan import Plan
from broadcaster.clock import Clock
from broadcaster.db.models import Activity, CampaignRun, CampaignVersion
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import AgencySettings
from broadcaster.vocabulary import RunStatus
from broadcaster.whole_files import writing_whole

__all__ = [
    "BROADCAST",
    "ActivityError",
    "ActivityKind",
    "ActivityRow",
    "list_activities",
    "record_activity",
]

EVIDENCE_DIR = "evidence"
BROADCAST = "broadcast"  # the kind under which a campaign run is listed
_LINK_SCHEMES = ("http://", "https://")
_EARLIEST, _LATEST = date(1900, 1, 1), date(9998, 12, 31)


class ActivityError(UserError):
    """Bad input for an activity; the message names the option at fault. Nothing was stored."""


class ActivityKind(StrEnum):
    """What staff record: the plan's activities that are not broadcasts (section III)."""

    PRESS_BRIEFING = "press_briefing"  # III.4
    DIALOGUE = "dialogue"  # III.2, III.3
    TV_SEGMENT = "tv_segment"  # III.5.a, every two weeks
    PRESS_ARTICLE = "press_article"  # III.5.b
    PORTAL_POST = "portal_post"  # III.5.c
    VISUAL = "visual"  # III.6: panels, banners, posters, staged shows
    GRASSROOTS = "grassroots"  # III.7
    PRINTED_MATERIALS = "printed_materials"  # III.8
    SOCIAL_MEDIA = "social_media"  # III.9
    MEETING = "meeting"  # conferences, seminars, training (III.1)
    REPORT = "report"  # section V
    OTHER = "other"


# How officers read the kinds (activities list, the report documents).
KIND_LABELS: dict[str, str] = {
    ActivityKind.PRESS_BRIEFING: "Họp báo",
    ActivityKind.DIALOGUE: "Đối thoại",
    ActivityKind.TV_SEGMENT: "Chuyên mục truyền hình",
    ActivityKind.PRESS_ARTICLE: "Tin, bài báo chí",
    ActivityKind.PORTAL_POST: "Tin, bài trên Cổng TTĐT",
    ActivityKind.VISUAL: "Tuyên truyền trực quan",
    ActivityKind.GRASSROOTS: "Thông tin cơ sở",
    ActivityKind.PRINTED_MATERIALS: "Xuất bản phẩm",
    ActivityKind.SOCIAL_MEDIA: "Mạng xã hội",
    ActivityKind.MEETING: "Hội nghị, tập huấn",
    ActivityKind.REPORT: "Báo cáo",
    ActivityKind.OTHER: "Khác",
    BROADCAST: "Gửi tin (chiến dịch)",
}


def kind_label(kind: str) -> str:
    """The Vietnamese name of an activity kind (or of a broadcast run); an unknown key as it is."""
    return KIND_LABELS.get(kind, kind)


@dataclass(frozen=True)
class ActivityRow:
    """One line of ``activities list``: a recorded activity or a broadcast run."""

    source: str  # "recorded" | "run"
    id: int
    occurred_on: date
    plan_item: str
    agency: str  # a key of [agencies]
    agency_name: str
    kind: str
    title: str
    evidence: str | None
    evidence_sha256: str | None
    status: str | None  # a run's status


def _check_evidence(evidence: str | None, *, base_dir: Path) -> Path | None:
    """The file to copy, None for a link or no evidence; raises when a path names no file."""
    if evidence is None or evidence.startswith(_LINK_SCHEMES):
        return None
    path = Path(evidence).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ActivityError(
            _("--evidence: no such file %(path)s; give a file or an http(s):// link") % {"path": path}
        )
    return path


def _store_evidence(source: Path, *, workdir: Path) -> tuple[str, str]:
    """Copy ``source`` to evidence/<sha256><suffix>; (stored name relative to the working directory, sha256)."""
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    sha = digest.hexdigest()
    target = workdir / EVIDENCE_DIR / f"{sha}{source.suffix.lower()}"
    if not target.exists():  # the same bytes filed twice are one file
        target.parent.mkdir(parents=True, exist_ok=True)
        with writing_whole(target) as partial:
            shutil.copyfile(source, partial)
    return target.relative_to(workdir).as_posix(), sha


def _unknown_plan_item(plan: Plan, plan_item: str) -> str:
    return _("--plan-item: unknown plan item '%(item)s' (known: %(known)s)") % {
        "item": plan_item,
        "known": ", ".join(plan.item_ids),
    }


def record_activity(
    session: Session,
    *,
    plan: Plan,
    agencies: Mapping[str, AgencySettings],
    occurred_on: date,
    plan_item: str,
    agency: str,
    kind: str,
    title: str,
    evidence: str | None,
    workdir: Path,
    cwd: Path,
    actor: str,
    clock: Clock,
    zone: ZoneInfo,
) -> Activity:
    """Check every input, then store the evidence and the row, audited, in the caller's transaction."""
    if plan.item(plan_item) is None:
        raise ActivityError(_unknown_plan_item(plan, plan_item))
    if agency not in agencies:
        raise ActivityError(
            _(
                "--agency: unknown agency '%(agency)s' (known: %(known)s); agencies are the settings' [agencies.<key>]"
            )
            % {"agency": agency, "known": ", ".join(sorted(agencies))}
        )
    if kind not in {k.value for k in ActivityKind}:
        raise ActivityError(
            _("--kind: unknown kind '%(kind)s' (known: %(known)s)")
            % {"kind": kind, "known": ", ".join(k.value for k in ActivityKind)}
        )
    today = clock.now().astimezone(zone).date()
    if occurred_on > today:
        raise ActivityError(
            _("--date: %(date)s is in the future (today is %(today)s); record what was done")
            % {"date": f"{occurred_on:%Y-%m-%d}", "today": f"{today:%Y-%m-%d}"}
        )
    title = title.strip()
    if not title:
        raise ActivityError(_("--title: say what was done, e.g. the briefing's subject"))
    source = _check_evidence(evidence, base_dir=cwd)
    stored, sha = (evidence, None) if source is None else _store_evidence(source, workdir=workdir)
    activity = Activity(
        occurred_on=occurred_on,
        plan_item=plan_item,
        agency=agency,
        kind=kind,
        title=title,
        evidence=stored,
        evidence_sha256=sha,
        recorded_by=actor,
        recorded_at=clock.now(),
    )
    session.add(activity)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="activity.recorded",
        subject_type="activity",
        subject_id=activity.id,
        at=activity.recorded_at,
        details={"plan_item": plan_item, "agency": agency, "kind": kind, "evidence_sha256": sha},
    )
    return activity


def _utc_bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) local, in UTC: the runs that started on those local days."""
    start, end = max(start, _EARLIEST), min(end, _LATEST)  # date.min/max have no UTC moment on every side
    first = datetime.combine(start, time(), zone).astimezone(UTC)
    last = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
    return first, last


def list_activities(
    session: Session,
    *,
    plan: Plan,
    agencies: Mapping[str, AgencySettings],
    zone: ZoneInfo,
    start: date = date.min,
    end: date = date.max,
    plan_item: str | None = None,
) -> list[ActivityRow]:
    """Recorded activities and broadcast runs (not cancelled ones) between ``start`` and ``end``, by date."""
    if plan_item is not None and plan.item(plan_item) is None:
        raise ActivityError(_unknown_plan_item(plan, plan_item))

    def name_of(key: str) -> str:
        found = agencies.get(key)
        return found.name if found is not None else key

    rows: list[ActivityRow] = []
    query = select(Activity).where(Activity.occurred_on >= start, Activity.occurred_on <= end)
    if plan_item is not None:
        query = query.where(Activity.plan_item == plan_item)
    for activity in session.scalars(query):
        rows.append(
            ActivityRow(
                "recorded",
                activity.id,
                activity.occurred_on,
                activity.plan_item,
                activity.agency,
                name_of(activity.agency),
                activity.kind,
                activity.title,
                activity.evidence,
                activity.evidence_sha256,
                None,
            )
        )
    first, last = _utc_bounds(start, end, zone)
    runs = session.execute(
        select(CampaignRun, CampaignVersion.definition, func.coalesce(CampaignRun.planned_messages, 0))
        .join(CampaignVersion, CampaignVersion.id == CampaignRun.version_id)
        .where(
            CampaignRun.occurrence_at >= first,
            CampaignRun.occurrence_at < last,
            CampaignRun.status != RunStatus.CANCELLED,
        )
    )
    for run, definition, planned in runs:
        item_id = definition.get("plan_item")
        item = plan.item(item_id) if isinstance(item_id, str) else None
        if item is None or (plan_item is not None and item.id != plan_item):
            continue  # a campaign outside the plan is not one of its activities
        started = run.occurrence_at if run.occurrence_at.tzinfo else run.occurrence_at.replace(tzinfo=UTC)
        rows.append(
            ActivityRow(
                "run",
                run.id,
                started.astimezone(zone).date(),
                item.id,
                item.lead_agency,
                name_of(item.lead_agency),
                BROADCAST,
                str(definition.get("title") or run.campaign_id),
                f"{run.campaign_id} #{run.id}: {planned} tin",
                None,
                run.status.value,
            )
        )
    rows.sort(key=lambda row: (row.occurred_on, row.source, row.id))
    return rows
