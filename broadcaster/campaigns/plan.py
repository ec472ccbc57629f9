"""Plan 143's items as data: ``campaigns/plan-143/plan.yaml`` loaded, validated and checked against the agencies.

Campaign files (``plan_item``) and recorded activities refer to the items by id; reports read each item's lead
agency, audiences, channels and required frequency from here. Agencies are keys of the settings'
``[agencies.<key>]`` (docs/domain.md §0: names change, keys do not). Problems name the file and line, as campaign
files' do (``yaml_source``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from broadcaster.campaigns.problem import Problem
from broadcaster.campaigns.yaml_source import dotted, line_of, parse_yaml
from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings import Settings
from broadcaster.settings_sections import AgencySettings

__all__ = [
    "PLAN_FILENAME",
    "Frequency",
    "Plan",
    "PlanChannel",
    "PlanError",
    "PlanItem",
    "load_plan",
    "plan_from_settings",
]

# The file's name: a directory walk for campaign files skips it (it sits among plan-143's campaigns).
PLAN_FILENAME = "plan.yaml"

_ITEM_ID = r"^[IVXLC]+(\.[0-9a-zđ]+)*$"  # as campaign files write plan_item
_KEY = r"^[a-z0-9][a-z0-9-]{0,63}$"
_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class PlanError(UserError):
    """The plan file cannot be used; the message lists every problem as ``file:line: field: message``."""


class Frequency(StrEnum):
    """How often the plan requires an item to be done (its "Thời gian thực hiện")."""

    EVERY_TWO_WEEKS = "every_two_weeks"  # "02 tuần/kỳ"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"  # "Định kỳ 01 lần/quý"
    SEMI_ANNUAL = "semi_annual"  # "định kỳ trước ngày 30/5 và 30/11"
    YEARLY = "yearly"  # "Hằng năm"
    AT_LEAST_ONCE_A_YEAR = "at_least_once_a_year"  # "Mỗi năm ít nhất 01 lần"
    ONGOING = "ongoing"  # "Thường xuyên": no count to check, reports list what was done
    AS_NEEDED = "as_needed"


class PlanChannel(StrEnum):
    """The plan's forms of communication (section II.2), broadcasts and the rest."""

    SMS = "sms"
    EMAIL = "email"
    PRESS = "press"
    PRESS_BRIEFING = "press_briefing"
    TV_RADIO = "tv_radio"
    WEBSITE = "website"
    SOCIAL_MEDIA = "social_media"
    MOBILE_APP = "mobile_app"
    HOTLINE = "hotline"
    DIALOGUE = "dialogue"
    MEETING = "meeting"
    NOTICE_BOARD = "notice_board"
    PRINT = "print"
    VISUAL = "visual"
    STAGE = "stage"
    GRASSROOTS_RADIO = "grassroots_radio"
    REPORT = "report"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


AgencyKey = Annotated[str, Field(pattern=_KEY)]


class PlanItem(_Model):
    """One item of the plan: what is done, by whom, for whom, through what and how often."""

    id: Annotated[str, Field(pattern=_ITEM_ID)]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    lead_agency: AgencyKey
    co_agencies: list[AgencyKey] = []
    audiences: Annotated[list[Annotated[str, Field(pattern=_NAME)]], Field(min_length=1)]
    """Contact segments (citizen, civil_servant, business, press)."""
    channels: Annotated[list[PlanChannel], Field(min_length=1)]
    frequency: Frequency
    frequency_text: Annotated[str, Field(min_length=1)]
    """The plan's own words for the frequency, printed in reports."""


class Plan(_Model):
    plan: Annotated[str, Field(min_length=1)]
    """The plan's number, e.g. ``143/KH-UBND``."""
    title: Annotated[str, Field(min_length=1)]
    issued: date
    items: Annotated[list[PlanItem], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _nfc(cls, data: Any) -> Any:
        return _normalise(data)

    @model_validator(mode="after")
    def _unique_ids(self) -> Plan:
        seen: set[str] = set()
        for index, item in enumerate(self.items):
            if item.id in seen:
                raise ValueError(f"items[{index}].id: item '{item.id}' appears twice")
            seen.add(item.id)
        return self

    def item(self, item_id: str) -> PlanItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    @property
    def item_ids(self) -> list[str]:
        return [item.id for item in self.items]


def _normalise(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def load_plan(path: Path, *, agencies: Mapping[str, AgencySettings]) -> tuple[Plan | None, list[Problem]]:
    """Read and validate the plan file; every agency key it uses must be one of ``agencies``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        message = (
            "no such file (the settings' plan_file); `broadcaster init --force` restores the default one"
        )
        return None, [Problem(path, None, None, message)]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(path, None, None, f"cannot read: {exc}")]
    root, data, problems = parse_yaml(text, path)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [Problem(path, line_of(root, ()), None, "a plan file is a mapping: plan, title, items")]
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        found: list[Problem] = []
        for error in exc.errors():
            loc: list[str | int] = list(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "value_error" and ": " in message and message.startswith("items["):
                where, message = message.split(": ", 1)  # a model rule names the field it blames
                index = int(where[len("items[") : where.index("]")])
                loc = ["items", index, "id"]
            if error["type"] == "missing":
                message = f"required field '{loc[-1]}' is missing"
                found.append(Problem(path, line_of(root, loc[:-1]), dotted(loc), message))
                continue
            found.append(Problem(path, line_of(root, loc), dotted(loc) or None, message))
        return None, found
    unknown = _unknown_agencies(plan, agencies, path=path, root=root)
    return (None, unknown) if unknown else (plan, [])


def _unknown_agencies(
    plan: Plan, agencies: Mapping[str, AgencySettings], *, path: Path, root: Any
) -> list[Problem]:
    problems: list[Problem] = []
    known = ", ".join(sorted(agencies)) or "none configured"
    for index, item in enumerate(plan.items):
        uses: list[tuple[tuple[str | int, ...], str]] = [(("lead_agency",), item.lead_agency)]
        uses += [(("co_agencies", i), key) for i, key in enumerate(item.co_agencies)]
        for where, key in uses:
            if key not in agencies:
                loc = ("items", index, *where)
                problems.append(
                    Problem(
                        path,
                        line_of(root, loc),
                        dotted(loc),
                        f"unknown agency '{key}': add [agencies.{key}] (name, code) to broadcaster.toml"
                        f" (known: {known})",
                    )
                )
    return problems


def plan_from_settings(settings: Settings) -> Plan:
    """The installation's plan (``plan_file``), or a ``PlanError`` listing every problem."""
    plan, problems = load_plan(settings.path(settings.plan_file), agencies=settings.agencies)
    if plan is None:
        raise PlanError(_("the plan file has problems:") + "\n" + "\n".join(str(p) for p in problems))
    return plan
