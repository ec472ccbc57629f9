"""Validate a campaign sent as text (the REST API's body) with the same checks as a file on disk.

The YAML and the templates the caller sends are written to a temporary working copy (the installation's
templates first, the caller's on top), then ``validate_paths`` runs on it: one set of rules for the CLI and
the API. Problems name ``campaign.yaml`` or the template's own path, never the temporary folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from broadcaster.campaigns.files import CampaignBundle, ProviderInfo, SendRules, validate_paths
from broadcaster.campaigns.plan import Plan
from broadcaster.campaigns.problem import Problem
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _

CAMPAIGN_NAME = "campaign.yaml"
MAX_TEMPLATES = 50


@dataclass(frozen=True)
class TextChecks:
    """What ``validate_paths`` checks against: the installation's templates, providers, rules and plan."""

    templates_dir: Path
    providers: Mapping[str, ProviderInfo]
    rules: SendRules
    plan: Plan


def _template_target(root: Path, name: str) -> Path:
    """``sms/x.txt.j2`` under ``root``; anything reaching outside it (``..``, an absolute path) is refused."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts or "\\" in name or "\x00" in name:
        raise UserError(
            _("template path '%(name)s': give a relative path such as sms/thong-bao.txt.j2") % {"name": name}
        )
    return root.joinpath(*pure.parts)


def validate_text(
    campaign_yaml: str, templates: Mapping[str, str], checks: TextChecks
) -> tuple[CampaignBundle | None, list[Problem]]:
    """The bundle (valid) or the problems of one campaign file's text and the templates sent with it."""
    if len(templates) > MAX_TEMPLATES:
        raise UserError(_("at most %(max)s templates in one request") % {"max": MAX_TEMPLATES})
    with tempfile.TemporaryDirectory(prefix="broadcaster-api-") as folder:
        root = Path(folder)
        templates_root = root / "templates"
        if checks.templates_dir.is_dir():
            shutil.copytree(checks.templates_dir, templates_root)
        templates_root.mkdir(exist_ok=True)
        for name, text in templates.items():
            target = _template_target(templates_root, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        source = root / CAMPAIGN_NAME
        source.write_text(campaign_yaml, encoding="utf-8")
        bundles, problems = validate_paths(
            [source],
            templates_dir=templates_root,
            providers=checks.providers,
            rules=checks.rules,
            plan=checks.plan,
        )
        shown = [replace(p, file=_shown(p.file, root, templates_root)) for p in problems]
        bundle = replace(bundles[0], source=Path(CAMPAIGN_NAME)) if bundles and not problems else None
    return bundle, shown


def _shown(file: Path, root: Path, templates_root: Path) -> Path:
    for base in (templates_root, root):
        try:
            return file.relative_to(base)
        except ValueError:
            continue
    return Path(file.name)
