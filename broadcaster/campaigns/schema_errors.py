"""Pydantic validation errors of a campaign file as problems at the file and line of the offending field.

Error locations are walked down the YAML node tree; unknown fields get a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails
from yaml.nodes import Node

from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.schema import CampaignDefinition
from broadcaster.campaigns.yaml_source import dotted, line_of
from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.rendering import shorten

__all__ = ["problem_from_error"]


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
        model, _container = _unwrap(typing.get_args(annotation)[-1])
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
    "id": N_("id must be 3-64 characters: lowercase letters, digits and hyphens, e.g. 'ban-tin-cchc'"),
    "template": N_("a template name is 'sms/NAME' or 'email/NAME' (lowercase, digits, - and _), no suffix"),
    "plan_item": N_("plan_item is a section of plan 143 like 'III.9' or 'V'"),
}


def problem_from_error(error: ErrorDetails, root: Node | None, path: Path) -> Problem:
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
    line = line_of(root, loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = _fields_at(loc[:-1]) or []
        message = _("unknown field '%(name)s'") % {"name": name}
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += " " + _("(did you mean '%(close)s'?)") % {"close": close[0]}
        elif known:
            message += " " + _("(known: %(known)s)") % {"known": ", ".join(known)}
    elif kind == "missing":
        message = _("required field '%(name)s' is missing") % {"name": loc[-1]}
        line = line_of(root, loc[:-1])
    elif kind == "string_type" and isinstance(error.get("input"), int | float):
        message += " " + _("(quote the value in YAML)")
    elif kind == "string_pattern_mismatch":
        hint = next((h for name, h in _PATTERN_HINTS.items() if name in loc), None)
        message = (
            _("%(hint)s; got %(value)s") % {"hint": _(hint), "value": shorten(repr(error.get("input")))}
            if hint
            else message
        )
    elif kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    return Problem(path, line, dotted(loc) or None, message)
