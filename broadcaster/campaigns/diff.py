"""What changed between two versions of a campaign: a unified diff of the campaign file and of each template
that differs, read from the stored snapshots (what each version sends), never from the disk."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from sqlalchemy.orm import Session

from broadcaster.campaigns.store import get_campaign, get_version
from broadcaster.db.models import CampaignVersion


@dataclass(frozen=True)
class FileDiff:
    """One file that differs: the campaign file (``kind`` "campaign") or a template under templates/."""

    kind: str  # campaign | template
    path: str
    change: str  # changed | added | removed
    diff: str  # unified diff text, ending with a newline

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "change": self.change, "diff": self.diff}


@dataclass(frozen=True)
class VersionDiff:
    campaign_id: str
    old: CampaignVersion
    new: CampaignVersion
    files: list[FileDiff]

    def as_dict(self) -> dict[str, Any]:
        def side(version: CampaignVersion) -> dict[str, Any]:
            return {
                "version": version.number,
                "status": version.status.value,
                "content_hash": version.content_hash,
            }

        return {
            "campaign_id": self.campaign_id,
            "from": side(self.old),
            "to": side(self.new),
            "files": [f.as_dict() for f in self.files],
        }


def _unified(old: str | None, new: str | None, *, path: str, old_number: int, new_number: int) -> str:
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile=f"v{old_number}/{path}" if old is not None else "/dev/null",
        tofile=f"v{new_number}/{path}" if new is not None else "/dev/null",
    )
    # A file without a final newline would glue its last line to the next header.
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _change(old: str | None, new: str | None) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


def diff_versions(session: Session, campaign_id: str, old_number: int, new_number: int) -> VersionDiff:
    """The files that differ between versions ``old_number`` and ``new_number`` (in that direction)."""
    get_campaign(session, campaign_id)
    old, new = get_version(session, campaign_id, old_number), get_version(session, campaign_id, new_number)
    files: list[FileDiff] = []
    if old.source_text != new.source_text:
        path = PurePath(new.source_path).name
        text = _unified(
            old.source_text, new.source_text, path=path, old_number=old.number, new_number=new.number
        )
        files.append(FileDiff("campaign", path, "changed", text))
    old_templates: dict[str, str] = dict(old.templates)
    new_templates: dict[str, str] = dict(new.templates)
    for name in sorted(old_templates.keys() | new_templates.keys()):
        before, after = old_templates.get(name), new_templates.get(name)
        if before == after:
            continue
        path = f"templates/{name}"
        text = _unified(before, after, path=path, old_number=old.number, new_number=new.number)
        files.append(FileDiff("template", path, _change(before, after), text))
    return VersionDiff(campaign_id, old, new, files)
