"""Line-aware YAML for campaign files: parse with the node tree kept, and find the line of any field.

Lines come from PyYAML's node tree (``compose``), so every problem can name the line of the offending field.
Campaign files are read as YAML 1.2 numbers would be, without anchors, and with duplicate keys refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.events import NodeEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from broadcaster.campaigns.problem import Problem
from broadcaster.i18n import gettext as _

__all__ = ["dotted", "line_of", "parse_yaml"]


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


def parse_yaml(text: str, path: Path) -> tuple[Node | None, Any, list[Problem]]:
    try:
        loader = _Loader(text)  # checks every character first
    except ReaderError as exc:
        where = text.count("\n", 0, exc.position) + 1
        message = _("malformed YAML: control character %(code)s is not allowed; remove it") % {
            "code": f"U+{exc.character:04X}"
        }
        return None, None, [Problem(path, where, None, message)]
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _AnchorRefused as exc:
        message = _(
            "YAML anchors and aliases (&name, *name) are not allowed in campaign files: write each value out in full"
        )
        return None, None, [Problem(path, exc.line, None, message)]
    except RecursionError:
        return None, None, [Problem(path, None, None, _("malformed YAML: nested too deeply"))]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        return (
            None,
            None,
            [Problem(path, line, None, _("malformed YAML: %(detail)s") % {"detail": detail or exc})],
        )
    except yaml.YAMLError as exc:
        return None, None, [Problem(path, None, None, _("malformed YAML: %(detail)s") % {"detail": exc})]
    except ValueError as exc:  # the constructor rejects e.g. a timestamp with month 13
        return (
            None,
            None,
            [Problem(path, None, None, _("malformed YAML value: %(detail)s") % {"detail": exc})],
        )
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
                            dotted((*where, key.value)),
                            _("key '%(key)s' appears twice (first on line %(line)s)")
                            % {"key": key.value, "line": seen[key.value]},
                        )
                    )
                seen.setdefault(key.value, line)
                problems.extend(_duplicate_keys(value, path, (*where, key.value)))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, path, (*where, index)))
    return problems


def line_of(root: Node | None, loc: Sequence[str | int]) -> int | None:
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


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
