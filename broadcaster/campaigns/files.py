"""Load and validate campaign files: YAML -> ``CampaignDefinition`` + template snapshot, or line-accurate problems.

Every problem names the file and the line of the offending field (``campaigns/x.yaml:12: channels.sms.provider:
unknown provider ...``) so that an editor can fix it without reading a traceback (docs/style.md, house habits).
This module runs the steps in order; each lives in its own module: line-aware YAML (``yaml_source``), schema
errors mapped to lines (``schema_errors``), the templates and the names they use (``template_scan``), and one
sample rendering (``sample_checks``: SMS length, the label and refusal of advertising). Providers are checked here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from yaml.nodes import Node

from broadcaster.campaigns.plan import PLAN_FILENAME, Plan
from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.sample_checks import sample_checks
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.campaigns.schema_errors import problem_from_error
from broadcaster.campaigns.send_rules import ProviderInfo, SendRules
from broadcaster.campaigns.social_checks import personal_post_problems, social_spec_problems
from broadcaster.campaigns.template_scan import TemplateScan, check_names, closure, collect_templates
from broadcaster.campaigns.yaml_source import line_of, parse_yaml
from broadcaster.i18n import gettext as _
from broadcaster.rendering import OPTIONAL_PARTS, template_files
from channels.base import Channel

__all__ = [
    "CampaignBundle",
    "Problem",
    "ProviderInfo",
    "SendRules",
    "compute_content_hash",
    "load_campaign_file",
    "validate_paths",
]

CAMPAIGN_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class CampaignBundle:
    """A validated campaign: its definition, source and the exact template files it renders with."""

    definition: CampaignDefinition
    source: Path
    source_text: str
    templates: dict[str, str]
    """Template path relative to the templates root (``sms/x.txt.j2``) -> its text, layouts included."""
    content_hash: str
    """sha256 hex over canonical JSON of definition + templates; approval is bound to it."""


def compute_content_hash(
    *, definition: CampaignDefinition | Mapping[str, Any], templates: Mapping[str, str]
) -> str:
    """sha256 over canonical JSON (sorted keys, no spaces, UTF-8) of definition + templates.

    Independent of YAML key order. ``definition`` may be the model or its stored ``model_dump(mode="json")``
    (both give the same hash, so a stored snapshot can be re-verified).
    """
    dumped = definition.model_dump(mode="json") if isinstance(definition, BaseModel) else dict(definition)
    payload = {"definition": dumped, "templates": dict(templates)}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- one campaign -----------------------------------------------------------------------------------------


def _semantic_checks(
    definition: CampaignDefinition,
    *,
    path: Path,
    root: Node | None,
    templates_dir: Path,
    providers: Mapping[str, ProviderInfo],
    rules: SendRules,
) -> tuple[dict[str, str], list[Problem]]:
    problems: list[Problem] = []
    scan = TemplateScan()
    for channel, spec in definition.channels.items():
        prefix = f"channels.{channel}"
        provider = providers.get(spec.provider)
        if provider is None:
            known = ", ".join(providers) or _("none configured")
            problems.append(
                Problem(
                    path,
                    line_of(root, ("channels", channel, "provider")),
                    f"{prefix}.provider",
                    _("unknown provider '%(provider)s' (known: %(known)s)")
                    % {"provider": spec.provider, "known": known},
                )
            )
        elif provider.channel != channel:
            problems.append(
                Problem(
                    path,
                    line_of(root, ("channels", channel, "provider")),
                    f"{prefix}.provider",
                    _("provider '%(provider)s' sends %(sends)s, not %(channel)s")
                    % {"provider": spec.provider, "sends": provider.channel, "channel": channel},
                )
            )
        elif str(channel) == Channel.SOCIAL.value:
            problems.extend(social_spec_problems(spec, provider, path=path, root=root))
        roots: list[str] = []
        for part, rel in template_files(spec.template, channel).items():
            if (templates_dir / rel).is_file():
                roots.append(rel)
            elif (channel, part) not in OPTIONAL_PARTS:
                problems.append(
                    Problem(
                        path,
                        line_of(root, ("channels", channel, "template")),
                        f"{prefix}.template",
                        _("template '%(template)s' has no %(part)s file: expected %(expected)s")
                        % {"template": spec.template, "part": part, "expected": templates_dir / rel},
                    )
                )
        collect_templates(roots, templates_dir=templates_dir, field_name=f"{prefix}.template", scan=scan)
        if provider is not None and provider.capabilities.targets_setting is not None:
            used = dict.fromkeys(dep for name in roots for dep in closure(name, scan))
            problems.extend(personal_post_problems(used, scan.templates, templates_dir=templates_dir))
        for name in roots:
            for dep in closure(name, scan):
                problems.extend(
                    p
                    for p in sorted(
                        check_names(
                            dep,
                            scan.asts[dep],
                            definition=definition,
                            templates_dir=templates_dir,
                            field_name=f"{prefix}.template",
                        ),
                        key=lambda problem: problem.line or 0,
                    )
                    if p not in problems
                )
    problems.extend(scan.problems)
    if not problems:
        problems.extend(
            sample_checks(
                definition,
                path=path,
                root=root,
                templates_dir=templates_dir,
                scan=scan,
                providers=providers,
                rules=rules,
            )
        )
    return scan.templates, [_tell_campaign(problem, path=path, root=root) for problem in problems]


def _tell_campaign(problem: Problem, *, path: Path, root: Node | None) -> Problem:
    """A problem found in a template also names the campaign line that uses it (templates are shared)."""
    if problem.file == path or problem.field is None:
        return problem
    loc = [int(p) if p.isdigit() else p for p in problem.field.split(".")]
    return Problem(
        problem.file,
        problem.line,
        problem.field,
        problem.message + " " + _("(used by %(where)s)") % {"where": f"{path}:{line_of(root, loc)}"},
    )


def load_campaign_file(
    path: Path,
    *,
    templates_dir: Path,
    providers: Mapping[str, ProviderInfo],
    rules: SendRules | None = None,
    plan: Plan | None = None,
) -> tuple[CampaignBundle | None, list[Problem]]:
    """Read, validate and snapshot one campaign file. The bundle is None whenever there is a problem.

    ``rules`` come from the settings (``SendRules.from_settings``); without them the sample renderings use a
    built-in sample organisation and the default rendering limits and opt-out keywords. ``plan``: the plan
    whose items ``plan_item`` must name (None: not checked)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None, [Problem(path, None, None, _("no such file"))]
    except UnicodeDecodeError as exc:
        return None, [Problem(path, None, None, _("not UTF-8 text: %(error)s") % {"error": exc})]
    except OSError as exc:
        return None, [Problem(path, None, None, _("cannot read: %(error)s") % {"error": exc.strerror or exc})]
    root, data, problems = parse_yaml(text, path)
    if root is None and not problems:
        return None, [
            Problem(path, 1, None, _("the file is empty; a campaign needs id, title, purpose, ..."))
        ]
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [Problem(path, line_of(root, ()), None, _("a campaign file is a mapping of fields"))]
    try:
        definition = CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        return None, [problem_from_error(error, root, path) for error in exc.errors()]
    if plan is not None and definition.plan_item is not None and plan.item(definition.plan_item) is None:
        message = _("unknown plan item '%(item)s' (plan %(plan)s: %(items)s)") % {
            "item": definition.plan_item,
            "plan": plan.plan,
            "items": ", ".join(plan.item_ids),
        }
        return None, [Problem(path, line_of(root, ("plan_item",)), "plan_item", message)]
    templates, problems = _semantic_checks(
        definition,
        path=path,
        root=root,
        templates_dir=templates_dir,
        providers=providers,
        rules=SendRules() if rules is None else rules,
    )
    if problems:
        return None, problems
    snapshot = dict(sorted(templates.items()))
    bundle = CampaignBundle(
        definition=definition,
        source=path,
        source_text=text,
        templates=snapshot,
        content_hash=compute_content_hash(definition=definition, templates=snapshot),
    )
    return bundle, []


def _campaign_files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            # The plan's own file sits among its campaigns: it is data campaigns refer to, not a campaign.
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.suffix in CAMPAIGN_SUFFIXES and p.is_file() and p.name != PLAN_FILENAME
            )
        else:
            yield path


def validate_paths(
    paths: Sequence[Path],
    *,
    templates_dir: Path,
    providers: Mapping[str, ProviderInfo],
    rules: SendRules | None = None,
    plan: Plan | None = None,
) -> tuple[list[CampaignBundle], list[Problem]]:
    """Validate files and directories (walked for *.yaml / *.yml). A campaign id may appear only once."""
    bundles: list[CampaignBundle] = []
    problems: list[Problem] = []
    first_seen: dict[str, Path] = {}
    for file in _campaign_files(paths):
        bundle, found = load_campaign_file(
            file, templates_dir=templates_dir, providers=providers, rules=rules, plan=plan
        )
        problems.extend(found)
        if bundle is None:
            continue
        campaign_id = bundle.definition.id
        if campaign_id in first_seen:
            root, _data, _problems = parse_yaml(bundle.source_text, file)
            problems.append(
                Problem(
                    file,
                    line_of(root, ("id",)),
                    "id",
                    _("duplicate campaign id '%(campaign)s' (also in %(file)s)")
                    % {"campaign": campaign_id, "file": first_seen[campaign_id]},
                )
            )
            continue
        first_seen[campaign_id] = file
        bundles.append(bundle)
    return bundles, problems
