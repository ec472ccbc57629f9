"""Read the templates a campaign uses, with everything they extend, include or import, and check the names.

Each file is parsed once; problems name the template file and line. A template must stay inside the templates
directory, name every file it references as a constant (the approved snapshot lists them all), stay shallow
enough to walk, and use only names the render context will have.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.schema import CAMPAIGN_CONTEXT_FIELDS, CampaignDefinition
from broadcaster.i18n import gettext as _
from broadcaster.rendering import CONTACT_FIELDS, CONTEXT_ROOTS, ORG_FIELDS, TOO_DEEP, make_environment

__all__ = ["TemplateScan", "check_names", "closure", "collect_templates"]


@dataclass
class TemplateScan:
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
        _(
            "template is a link to %(real)s, outside the templates directory %(dir)s; "
            "copy the file into the templates directory instead of linking to it"
        )
        % {"real": real, "dir": templates_dir},
    )


def collect_templates(
    roots: Sequence[str], *, templates_dir: Path, field_name: str, scan: TemplateScan
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
            scan.problems.append(
                Problem(file, None, field_name, _("template is not UTF-8: %(error)s") % {"error": exc})
            )
            continue
        scan.templates[name] = text
        try:
            ast = env.parse(text, name=name, filename=str(file))
        except TemplateSyntaxError as exc:
            scan.problems.append(
                Problem(
                    file,
                    exc.lineno,
                    field_name,
                    _("template syntax error: %(error)s") % {"error": exc.message},
                )
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
                        _(
                            "computed template names are not allowed: the approved snapshot must list every file"
                        ),
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
                            file,
                            node.lineno,
                            field_name,
                            _("template '%(name)s' leaves the templates directory") % {"name": dep},
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
                        _("template '%(name)s' not found (expected at %(expected)s)")
                        % {"name": targets[0], "expected": templates_dir / str(targets[0])},
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


def check_names(
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
                    _("unknown template variable '%(name)s' (known: %(known)s)")
                    % {"name": node.name, "known": ", ".join(sorted(CONTEXT_ROOTS))},
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
        where = _("the campaign's variables") if root == "vars" else _("the %(root)s fields") % {"root": root}
        listing = ", ".join(sorted(allowed)) or _("none defined")
        problems.append(
            Problem(
                file,
                line,
                field_name,
                _("unknown template variable '%(name)s' (%(where)s: %(listing)s)")
                % {"name": f"{root}.{attr}", "where": where, "listing": listing},
            )
        )
    return problems


def closure(name: str, scan: TemplateScan) -> list[str]:
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
