"""A new version from edited files: validate the edits on a temporary copy, then write and load them.

The web's "load a new version" form sends a campaign file's text and its templates' texts. They are checked
with the same ``validate_paths`` as ``campaigns validate/load``, on a temporary copy of the templates with the
edits applied, so a mistake never reaches the working directory. Only valid edits are written (each file whole,
``whole_files``), and only then loaded, so a failure leaves the old version in place.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sqlalchemy.orm import Session

from broadcaster.campaigns.files import CampaignBundle, Problem, ProviderInfo, SendRules, validate_paths
from broadcaster.campaigns.plan import plan_from_settings
from broadcaster.campaigns.store import LoadOutcome, load_bundle
from broadcaster.campaigns.yaml_source import line_of, parse_yaml
from broadcaster.clock import Clock
from broadcaster.settings import Settings
from broadcaster.whole_files import writing_whole

__all__ = ["FileEdits", "WorkingDirs", "load_edits", "relative_file", "validate_edits"]

# What a template path may look like: under sms/, email/, push/ or social/, plain names, ending in .j2 (templates/README.md).
_TEMPLATE_PATH = re.compile(r"^(sms|email|push|social)(/[A-Za-z0-9][A-Za-z0-9_.-]*)+\.j2$")
_CAMPAIGN_PATH = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*/)*[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$")


@dataclass(frozen=True)
class WorkingDirs:
    """Where the working directory keeps campaign files and templates (``AppContext`` has both)."""

    campaigns: Path
    templates: Path


@dataclass(frozen=True)
class FileEdits:
    """The campaign file (a path under campaigns/) and the templates (paths under templates/) to write."""

    campaign_file: PurePosixPath
    campaign_text: str
    templates: Mapping[str, str] = field(default_factory=dict)


def relative_file(text: str, *, template: bool) -> PurePosixPath | None:
    """A path a form names, when it is a plain relative path of the right kind (no ``..``, no absolute path)."""
    pattern = _TEMPLATE_PATH if template else _CAMPAIGN_PATH
    if not pattern.match(text) or ".." in text.split("/"):
        return None
    return PurePosixPath(text)


def _validate(
    campaign: Path, *, templates_dir: Path, settings: Settings
) -> tuple[list[CampaignBundle], list[Problem]]:
    """``validate_paths`` with the settings' providers, send rules and plan, as ``campaigns validate`` calls it."""
    return validate_paths(
        [campaign],
        templates_dir=templates_dir,
        providers=ProviderInfo.all_from(settings),
        rules=SendRules.from_settings(settings),
        plan=plan_from_settings(settings),
    )


def _wrong_id(bundle: CampaignBundle, *, expected_id: str, shown_as: Path) -> Problem | None:
    if bundle.definition.id == expected_id:
        return None
    root, _data, _problems = parse_yaml(bundle.source_text, shown_as)
    return Problem(
        shown_as,
        line_of(root, ("id",)),
        "id",
        f"the file is campaign '{bundle.definition.id}'; only a version of '{expected_id}' can be loaded here",
    )


def validate_edits(
    edits: FileEdits, *, dirs: WorkingDirs, settings: Settings, expected_id: str
) -> list[Problem]:
    """Every problem of the edited files, named as the working directory's files (nothing is written there)."""
    with tempfile.TemporaryDirectory(prefix="broadcaster-edit-") as scratch:
        root = Path(scratch)
        templates = root / "templates"
        if dirs.templates.is_dir():
            shutil.copytree(dirs.templates, templates)
        for name, text in edits.templates.items():
            (templates / name).parent.mkdir(parents=True, exist_ok=True)
            (templates / name).write_text(text, encoding="utf-8")
        campaign = root / "campaigns" / edits.campaign_file
        campaign.parent.mkdir(parents=True, exist_ok=True)
        campaign.write_text(edits.campaign_text, encoding="utf-8")
        bundles, problems = _validate(campaign, templates_dir=templates, settings=settings)
        shown = [_as_working(p, scratch=root, dirs=dirs) for p in problems]
        target = dirs.campaigns / edits.campaign_file
        for bundle in bundles:
            wrong = _wrong_id(bundle, expected_id=expected_id, shown_as=target)
            if wrong is not None:
                shown.append(wrong)
    return shown


def _as_working(problem: Problem, *, scratch: Path, dirs: WorkingDirs) -> Problem:
    """A problem found in the temporary copy, named by the file it will become in the working directory."""
    replacements = {
        str(scratch / "campaigns"): str(dirs.campaigns),
        str(scratch / "templates"): str(dirs.templates),
    }
    file, message = str(problem.file), problem.message
    for temporary, real in replacements.items():
        file = file.replace(temporary, real)
        message = message.replace(temporary, real)
    return Problem(Path(file), problem.line, problem.field, message)


def _write(edits: FileEdits, dirs: WorkingDirs) -> Path:
    for name, text in edits.templates.items():
        target = dirs.templates / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with writing_whole(target) as partial:
            partial.write_text(text, encoding="utf-8")
    campaign = dirs.campaigns / edits.campaign_file
    campaign.parent.mkdir(parents=True, exist_ok=True)
    with writing_whole(campaign) as partial:
        partial.write_text(edits.campaign_text, encoding="utf-8")
    return campaign


def load_edits(
    session: Session,
    edits: FileEdits,
    *,
    dirs: WorkingDirs,
    settings: Settings,
    expected_id: str,
    actor: str,
    clock: Clock,
) -> tuple[LoadOutcome | None, list[Problem]]:
    """Validate, write, then load (as ``campaigns load`` does): the outcome, or the problems and nothing
    written. The caller commits ``session``."""
    problems = validate_edits(edits, dirs=dirs, settings=settings, expected_id=expected_id)
    if problems:
        return None, problems
    campaign = _write(edits, dirs)
    # Loaded from the working directory, as the CLI would: the version's source is the real file.
    bundles, problems = _validate(campaign, templates_dir=dirs.templates, settings=settings)
    if problems or not bundles:
        return None, problems
    return load_bundle(session, bundles[0], actor=actor, clock=clock), []
