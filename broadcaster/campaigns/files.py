"""Load and validate campaign files: YAML -> ``CampaignDefinition`` + template snapshot, or line-accurate problems.

Every problem names the file and the line of the offending field (``campaigns/x.yaml:12: channels.sms.provider:
unknown provider ...``) so that an editor can fix it without reading a traceback (docs/style.md, house habits).
Lines come from PyYAML's node tree (``compose``); pydantic error locations are walked down that tree.

Beyond the schema, a campaign is checked against its surroundings: providers from the settings, the template
files (syntax, every extended/included file, names the templates use), and one sample rendering (SMS length,
the [QC]/[AD] label that Decree 91/2020 art. 15 requires first in every advertising SMS).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError, meta, nodes
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.events import NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from broadcaster.campaigns.schema import CAMPAIGN_CONTEXT_FIELDS, CampaignDefinition, Purpose
from broadcaster.rendering import (
    CONTACT_FIELDS,
    CONTEXT_ROOTS,
    OPTIONAL_PARTS,
    ORG_FIELDS,
    TOO_DEEP,
    Renderer,
    RenderError,
    build_context,
    make_environment,
    sample_contact,
    sample_org,
    shorten,
    template_files,
)
from broadcaster.settings import RenderingSettings
from channels.sms.encoding import analyse

__all__ = [
    "CampaignBundle",
    "Problem",
    "ProviderInfo",
    "compute_content_hash",
    "load_campaign_file",
    "validate_paths",
]

CAMPAIGN_SUFFIXES = (".yaml", ".yml")

# Decree 91/2020/NĐ-CP art. 15: every advertising SMS starts with the label [QC] or [AD] (docs/domain.md §1.1).
ADVERTISING_SMS_LABELS: tuple[str, ...] = ("[QC]", "[AD]")

SAMPLE_UNSUBSCRIBE_URL = "https://example.invalid/huy-dang-ky/MAU-0001"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a campaign file or one of its templates."""

    file: Path
    line: int | None
    field: str | None
    message: str

    def __post_init__(self) -> None:
        # A file's values are quoted in messages: a few hundred characters at most, never a whole file.
        object.__setattr__(self, "message", shorten(self.message, 600))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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


@dataclass(frozen=True)
class ProviderInfo:
    """What campaign validation needs to know about a configured provider."""

    name: str
    channel: str


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


# --- YAML ------------------------------------------------------------------------------------------------


class _AnchorRefused(Exception):
    """A campaign file used a YAML anchor (``&name``) or alias (``*name``) on ``line``."""

    def __init__(self, line: int | None) -> None:
        super().__init__(line)
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1's base-60 and octal numbers (as in YAML 1.2), and without anchors.

    YAML 1.1 reads ``end: 21:00`` as the integer 1260 and a hotline ``0236`` as octal 158; campaign files are
    written by people who mean a clock time and a phone number.
    """

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Refused rather than walked once: an alias shares one node between many places, so every walk of
        # the data after composing (duplicate keys, pydantic, the content hash's JSON) would meet it again,
        # and nine nested aliases of nine items each ("billion laughs") make 9**9 visits. A campaign file
        # is short and written by hand; it has no need for them.
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, NodeEvent) and event.anchor is not None:  # an alias event names its anchor too
            raise _AnchorRefused(event.start_mark.line + 1 if event.start_mark is not None else None)
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _parse_yaml(text: str, path: Path) -> tuple[Node | None, Any, list[Problem]]:
    try:
        loader = _Loader(text)  # checks every character first
    except ReaderError as exc:
        where = text.count("\n", 0, exc.position) + 1
        message = f"malformed YAML: control character U+{exc.character:04X} is not allowed; remove it"
        return None, None, [Problem(path, where, None, message)]
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _AnchorRefused as exc:
        message = (
            "YAML anchors and aliases (&name, *name) are not allowed in campaign files:"
            " write each value out in full"
        )
        return None, None, [Problem(path, exc.line, None, message)]
    except RecursionError:
        return None, None, [Problem(path, None, None, "malformed YAML: nested too deeply")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, None, [Problem(path, line, None, f"malformed YAML: {detail or exc}")]
    except yaml.YAMLError as exc:
        return None, None, [Problem(path, None, None, f"malformed YAML: {exc}")]
    except ValueError as exc:  # the constructor rejects e.g. a timestamp with month 13
        return None, None, [Problem(path, None, None, f"malformed YAML value: {exc}")]
    finally:
        loader.dispose()
    return node, data, _duplicate_keys(node, path, ())


def _duplicate_keys(node: Node | None, path: Path, where: tuple[str | int, ...]) -> list[Problem]:
    """PyYAML keeps the last of two equal keys silently; a campaign file must not say two things."""
    problems: list[Problem] = []
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    problems.append(
                        Problem(
                            path,
                            line,
                            _dotted((*where, key.value)),
                            f"key '{key.value}' appears twice (first on line {seen[key.value]})",
                        )
                    )
                seen.setdefault(key.value, line)
                problems.extend(_duplicate_keys(value, path, (*where, key.value)))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, path, (*where, index)))
    return problems


def _line_of(root: Node | None, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest node ``loc`` reaches: a mapping key's own line, or a list item's line."""
    if root is None:
        return None
    node: Node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --- pydantic errors -> problems --------------------------------------------------------------------------


def _unwrap(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside an annotation and whether a container (dict value / list item) lies on the way."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model, container = _unwrap(arg)
            if model is not None:
                return model, container
        return None, False
    if origin in (dict, list):
        model, _ = _unwrap(typing.get_args(annotation)[-1])
        return model, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _fields_at(loc: Sequence[str | int]) -> list[str] | None:
    """Field names the model at ``loc`` accepts (for "unknown field" suggestions)."""
    model: type[BaseModel] | None = CampaignDefinition
    skip = False
    for part in loc:
        if skip:
            skip = False
            continue
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        model, skip = _unwrap(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None and not skip else None


_PATTERN_HINTS: dict[str, str] = {
    "id": "id must be 3-64 characters: lowercase letters, digits and hyphens, e.g. 'ban-tin-cchc'",
    "template": "a template name is 'sms/NAME' or 'email/NAME' (lowercase, digits, - and _), no suffix",
    "plan_item": "plan_item is a section of plan 143 like 'III.9' or 'V'",
}


def _error_problem(error: ErrorDetails, root: Node | None, path: Path) -> Problem:
    loc: list[str | int] = [part for part in error["loc"]]
    message = error["msg"]
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "campaign_rule":
        loc.extend(int(p) if p.isdigit() else p for p in str(ctx["path"]).split("."))
        message = str(ctx["detail"])
    key_error = bool(loc) and loc[-1] == "[key]"
    if key_error:
        loc.pop()
    line = _line_of(root, loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = _fields_at(loc[:-1]) or []
        message = f"unknown field '{name}'"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        elif known:
            message += f" (known: {', '.join(known)})"
    elif kind == "missing":
        message = f"required field '{loc[-1]}' is missing"
        line = _line_of(root, loc[:-1])
    elif kind == "string_type" and isinstance(error.get("input"), int | float):
        message += " (quote the value in YAML)"
    elif kind == "string_pattern_mismatch":
        hint = next((h for name, h in _PATTERN_HINTS.items() if name in loc), None)
        message = f"{hint}; got {shorten(repr(error.get('input')))}" if hint else message
    elif kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    return Problem(path, line, _dotted(loc) or None, message)


# --- templates --------------------------------------------------------------------------------------------


@dataclass
class _TemplateScan:
    """Templates collected for one campaign, with the problems found while reading them."""

    templates: dict[str, str] = field(default_factory=dict)
    asts: dict[str, nodes.Template] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _references(ast: nodes.Template) -> Iterator[tuple[nodes.Node, Any]]:
    """Each extends/include/import node with its constant template name(s), or None when computed."""
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        target: nodes.Node = getattr(node, "template")  # noqa: B009 - the four node types share this field
        if isinstance(target, nodes.Const):
            yield node, target.value
        elif isinstance(target, nodes.Tuple | nodes.List) and all(
            isinstance(item, nodes.Const) for item in target.items
        ):
            yield node, [item.value for item in target.items if isinstance(item, nodes.Const)]
        else:
            yield node, None


def _outside_templates(file: Path, *, templates_dir: Path, field_name: str) -> Problem | None:
    """A problem when ``file`` really is elsewhere (a symbolic link, itself or a folder on its way, to a file
    outside the templates directory): its text would be snapshotted and sent, e.g. /etc/hostname."""
    real = file.resolve()
    if real.is_relative_to(templates_dir.resolve()):
        return None
    return Problem(
        file,
        None,
        field_name,
        f"template is a link to {real}, outside the templates directory {templates_dir}; "
        "copy the file into the templates directory instead of linking to it",
    )


def _collect_templates(
    roots: Sequence[str], *, templates_dir: Path, field_name: str, scan: _TemplateScan
) -> None:
    env = make_environment({})
    queue = list(roots)
    while queue:
        name = queue.pop(0)
        if name in scan.templates:
            continue
        file = templates_dir / name
        outside = _outside_templates(file, templates_dir=templates_dir, field_name=field_name)
        if outside is not None:
            scan.problems.append(outside)
            continue
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            scan.problems.append(Problem(file, None, field_name, f"template is not UTF-8: {exc}"))
            continue
        scan.templates[name] = text
        try:
            ast = env.parse(text, name=name, filename=str(file))
        except TemplateSyntaxError as exc:
            scan.problems.append(
                Problem(file, exc.lineno, field_name, f"template syntax error: {exc.message}")
            )
            continue
        except RecursionError:
            ast = None
        if ast is None or _deeper_than(ast, MAX_TEMPLATE_DEPTH):
            scan.problems.append(Problem(file, None, field_name, f"template syntax error: {TOO_DEEP}"))
            continue
        scan.asts[name] = ast
        for node, target in _references(ast):
            if target is None:
                scan.problems.append(
                    Problem(
                        file,
                        node.lineno,
                        field_name,
                        "computed template names are not allowed: the approved snapshot must list every file",
                    )
                )
                continue
            targets = target if isinstance(target, list) else [target]
            ignore_missing = bool(getattr(node, "ignore_missing", False)) or len(targets) > 1
            found = False
            for dep in targets:
                dep_path = Path(str(dep))
                if dep_path.is_absolute() or ".." in dep_path.parts:
                    scan.problems.append(
                        Problem(
                            file, node.lineno, field_name, f"template '{dep}' leaves the templates directory"
                        )
                    )
                    found = True
                    continue
                if (templates_dir / dep_path).is_file():
                    queue.append(str(dep))
                    found = True
            if not found and not ignore_missing:
                scan.problems.append(
                    Problem(
                        file,
                        node.lineno,
                        field_name,
                        f"template '{targets[0]}' not found (expected at {templates_dir / str(targets[0])})",
                    )
                )


# Levels of a template's syntax tree. Every later step (checks, compiling, rendering) walks the tree
# recursively, and a deeper one would exhaust Python's stack; the shipped templates have 6.
MAX_TEMPLATE_DEPTH = 100


def _deeper_than(ast: nodes.Node, limit: int) -> bool:
    """Whether the tree has more than ``limit`` levels (measured without recursion)."""
    stack = [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return False


def _attribute_uses(ast: nodes.Template) -> Iterator[tuple[str, str, int]]:
    """(root, attribute, line) for every ``root.attr`` and ``root['attr']`` on a context root."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        base = getattr(node, "node", None)
        if not isinstance(base, nodes.Name) or base.ctx != "load":
            continue
        if isinstance(node, nodes.Getattr):
            yield base.name, node.attr, node.lineno
        elif isinstance(node, nodes.Getitem):
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if isinstance(key, str):
                yield base.name, key, node.lineno


def _check_names(
    name: str,
    ast: nodes.Template,
    *,
    definition: CampaignDefinition,
    templates_dir: Path,
    field_name: str,
) -> list[Problem]:
    """Names a template uses that the render context will not have (StrictUndefined would fail at send)."""
    file = templates_dir / name
    problems: list[Problem] = []
    env = make_environment({})
    free = meta.find_undeclared_variables(ast)
    undeclared = free - CONTEXT_ROOTS - set(env.globals)
    reported: set[str] = set()
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in undeclared and node.name not in reported:
            reported.add(node.name)
            problems.append(
                Problem(
                    file,
                    node.lineno,
                    field_name,
                    f"unknown template variable '{node.name}' (known: {', '.join(sorted(CONTEXT_ROOTS))})",
                )
            )
    known: dict[str, frozenset[str]] = {
        "contact": CONTACT_FIELDS,
        "org": ORG_FIELDS,
        "campaign": CAMPAIGN_CONTEXT_FIELDS,
        "vars": frozenset(definition.variables),
    }
    for root, attr, line in _attribute_uses(ast):
        allowed = known.get(root)
        if allowed is None or root not in free or attr in allowed:
            continue
        where = "the campaign's variables" if root == "vars" else f"the {root} fields"
        listing = ", ".join(sorted(allowed)) or "none defined"
        problems.append(
            Problem(file, line, field_name, f"unknown template variable '{root}.{attr}' ({where}: {listing})")
        )
    return problems


# --- one campaign -----------------------------------------------------------------------------------------


def _semantic_checks(
    definition: CampaignDefinition,
    *,
    path: Path,
    root: Node | None,
    templates_dir: Path,
    providers: Mapping[str, ProviderInfo],
    org: Mapping[str, Any],
    limits: RenderingSettings | None,
) -> tuple[dict[str, str], list[Problem]]:
    problems: list[Problem] = []
    scan = _TemplateScan()
    for channel, spec in definition.channels.items():
        prefix = f"channels.{channel}"
        provider = providers.get(spec.provider)
        if provider is None:
            known = ", ".join(providers) or "none configured"
            problems.append(
                Problem(
                    path,
                    _line_of(root, ("channels", channel, "provider")),
                    f"{prefix}.provider",
                    f"unknown provider '{spec.provider}' (known: {known})",
                )
            )
        elif provider.channel != channel:
            problems.append(
                Problem(
                    path,
                    _line_of(root, ("channels", channel, "provider")),
                    f"{prefix}.provider",
                    f"provider '{spec.provider}' sends {provider.channel}, not {channel}",
                )
            )
        roots: list[str] = []
        for part, rel in template_files(spec.template, channel).items():
            if (templates_dir / rel).is_file():
                roots.append(rel)
            elif (channel, part) not in OPTIONAL_PARTS:
                problems.append(
                    Problem(
                        path,
                        _line_of(root, ("channels", channel, "template")),
                        f"{prefix}.template",
                        f"template '{spec.template}' has no {part} file: expected {templates_dir / rel}",
                    )
                )
        _collect_templates(roots, templates_dir=templates_dir, field_name=f"{prefix}.template", scan=scan)
        for name in roots:
            for dep in _closure(name, scan):
                problems.extend(
                    p
                    for p in sorted(
                        _check_names(
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
            _sample_checks(
                definition,
                path=path,
                root=root,
                templates_dir=templates_dir,
                scan=scan,
                org=org,
                limits=limits,
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
        f"{problem.message} (used by {path}:{_line_of(root, loc)})",
    )


def _closure(name: str, scan: _TemplateScan) -> list[str]:
    """``name`` and every template it references (transitively) that parsed."""
    out: list[str] = []
    queue = [name]
    while queue:
        current = queue.pop(0)
        if current in out or current not in scan.asts:
            continue
        out.append(current)
        for _node, target in _references(scan.asts[current]):
            if target is not None:
                queue.extend(str(t) for t in (target if isinstance(target, list) else [target]))
    return out


def _sample_checks(
    definition: CampaignDefinition,
    *,
    path: Path,
    root: Node | None,
    templates_dir: Path,
    scan: _TemplateScan,
    org: Mapping[str, Any],
    limits: RenderingSettings | None,
) -> list[Problem]:
    """Render every channel for the sample contact and check what only a rendering can show.

    ``org`` is the configured sending organisation, as preview and sending use it: its names are part of
    most SMS texts, so a sample organisation would count other SMS parts than those that are paid for.
    ``limits`` is the settings' ``[rendering]``: a template that renders past it here would at every send."""
    problems: list[Problem] = []
    try:
        renderer = Renderer(scan.templates, limits=limits)
    except RenderError as exc:
        return [Problem(templates_dir / exc.template, exc.line, None, exc.message)]
    for channel, spec in definition.channels.items():
        prefix = f"channels.{channel}"
        unsubscribe = None if spec.allow_unsubscribe is False else SAMPLE_UNSUBSCRIBE_URL
        context = build_context(
            contact=sample_contact(),
            campaign=definition.template_context(),
            org=org,
            variables=definition.variables,
            unsubscribe_url=unsubscribe,
        )
        try:
            rendered = renderer.render(
                template=spec.template, channel=channel, context=context, unaccented=spec.unaccented
            )
        except RenderError as exc:
            problems.append(
                Problem(templates_dir / exc.template, exc.line, f"{prefix}.template", exc.message)
            )
            continue
        if channel != "sms":
            continue
        text_file = templates_dir / template_files(spec.template, channel)["text"]
        if not rendered.text:
            problems.append(Problem(text_file, 1, f"{prefix}.template", "the sample SMS is empty"))
        analysis = analyse(rendered.text, unaccented=spec.unaccented)
        if spec.max_segments is not None and analysis.segments > spec.max_segments:
            problems.append(
                Problem(
                    path,
                    _line_of(root, ("channels", channel, "max_segments")),
                    f"{prefix}.max_segments",
                    f"the sample SMS needs {analysis.segments} parts ({analysis.units} {analysis.encoding.value}"
                    f" units, {analysis.per_segment} per part), more than max_segments {spec.max_segments}"
                    f" ({text_file}): {shorten(repr(rendered.text))}",
                )
            )
        if definition.purpose is Purpose.ADVERTISING and not rendered.text.startswith(ADVERTISING_SMS_LABELS):
            problems.append(
                Problem(
                    text_file,
                    1,
                    f"{prefix}.template",
                    "an advertising SMS must start with [QC] or [AD] (Decree 91/2020 art. 15);"
                    f" the sample starts {rendered.text[:20]!r}",
                )
            )
    return problems


def load_campaign_file(
    path: Path,
    *,
    templates_dir: Path,
    providers: Mapping[str, ProviderInfo],
    org: Mapping[str, Any] | None = None,
    limits: RenderingSettings | None = None,
) -> tuple[CampaignBundle | None, list[Problem]]:
    """Read, validate and snapshot one campaign file. The bundle is None whenever there is a problem.

    ``org`` is the settings' ``[org]`` (``Settings.org.model_dump()``); without it the sample renderings use
    a built-in sample organisation. ``limits`` is the settings' ``[rendering]`` (default: its defaults)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None, [Problem(path, None, None, "no such file")]
    except UnicodeDecodeError as exc:
        return None, [Problem(path, None, None, f"not UTF-8 text: {exc}")]
    except OSError as exc:
        return None, [Problem(path, None, None, f"cannot read: {exc.strerror or exc}")]
    root, data, problems = _parse_yaml(text, path)
    if root is None and not problems:
        return None, [Problem(path, 1, None, "the file is empty; a campaign needs id, title, purpose, ...")]
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [Problem(path, _line_of(root, ()), None, "a campaign file is a mapping of fields")]
    try:
        definition = CampaignDefinition.model_validate(data)
    except ValidationError as exc:
        return None, [_error_problem(error, root, path) for error in exc.errors()]
    templates, problems = _semantic_checks(
        definition,
        path=path,
        root=root,
        templates_dir=templates_dir,
        providers=providers,
        org=sample_org() if org is None else org,
        limits=limits,
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
            yield from sorted(p for p in path.rglob("*") if p.suffix in CAMPAIGN_SUFFIXES and p.is_file())
        else:
            yield path


def validate_paths(
    paths: Sequence[Path],
    *,
    templates_dir: Path,
    providers: Mapping[str, ProviderInfo],
    org: Mapping[str, Any] | None = None,
    limits: RenderingSettings | None = None,
) -> tuple[list[CampaignBundle], list[Problem]]:
    """Validate files and directories (walked for *.yaml / *.yml). A campaign id may appear only once."""
    bundles: list[CampaignBundle] = []
    problems: list[Problem] = []
    first_seen: dict[str, Path] = {}
    for file in _campaign_files(paths):
        bundle, found = load_campaign_file(
            file, templates_dir=templates_dir, providers=providers, org=org, limits=limits
        )
        problems.extend(found)
        if bundle is None:
            continue
        campaign_id = bundle.definition.id
        if campaign_id in first_seen:
            root, _data, _ = _parse_yaml(bundle.source_text, file)
            problems.append(
                Problem(
                    file,
                    _line_of(root, ("id",)),
                    "id",
                    f"duplicate campaign id '{campaign_id}' (also in {first_seen[campaign_id]})",
                )
            )
            continue
        first_seen[campaign_id] = file
        bundles.append(bundle)
    return bundles, problems
