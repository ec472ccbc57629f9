"""When a campaign runs: its schedule (once, by an RFC 5545 rule, or before yearly deadlines) and send window.

Naive datetimes in a campaign file mean local time in the schedule's time zone; occurrences come back in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RecurrenceRule
from dateutil.rrule import rrulestr
from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from broadcaster.campaigns.schema_base import CAMPAIGN_MODEL_CONFIG, located
from broadcaster.i18n import gettext as _

__all__ = ["DEFAULT_TIMEZONE", "Schedule", "SendWindow"]

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

_DEADLINE = re.compile(r"^(\d{2})-(\d{2})$")


class _Model(BaseModel):
    model_config = CAMPAIGN_MODEL_CONFIG


class SendWindow(_Model):
    """Local hours and days in which messages may go out; outside it, sends wait (``not_before``)."""

    start: time = time(7, 0)
    end: time = time(21, 0)
    weekdays: Annotated[list[Annotated[int, Field(ge=1, le=7)]], Field(min_length=1)] = [1, 2, 3, 4, 5, 6, 7]
    """ISO weekdays, 1 = Monday .. 7 = Sunday."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time_from_sexagesimal(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 21:00 as the base-60 integer 1260; our loader turns that off, but a
        # caller that used plain yaml.safe_load still gets the intended clock time.
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 24 * 60:
                return time(value // 60, value % 60)
            if value < 24 * 3600:
                return time(value // 3600, value // 60 % 60, value % 60)
        if isinstance(value, str) and re.fullmatch(r"\d:\d\d(:\d\d)?", value.strip()):
            return "0" + value.strip()  # "7:30" as people write it; pydantic wants "07:30"
        return value

    @model_validator(mode="after")
    def _check(self) -> SendWindow:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise located("start", _("window times are local clock times; leave out the UTC offset"))
        if self.end <= self.start:
            raise located(
                "end",
                _("window end %(end)s must be later than its start %(start)s")
                % {"end": self.end, "start": self.start},
            )
        return self

    def contains(self, moment: datetime, tz: ZoneInfo) -> bool:
        """Whether an aware ``moment`` falls inside the window in time zone ``tz``."""
        local = moment.astimezone(tz)
        return (
            local.isoweekday() in self.weekdays and self.start <= local.time().replace(tzinfo=None) < self.end
        )

    def next_open(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The earliest aware UTC instant at or after ``moment`` that lies inside the window."""
        if self.contains(moment, tz):
            return moment.astimezone(UTC)
        local = moment.astimezone(tz)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.isoweekday() not in self.weekdays:
                continue
            opening = datetime.combine(day, self.start, tzinfo=tz)
            if opening >= local:
                return opening.astimezone(UTC)
        raise ValueError("send window has no opening")  # unreachable: weekdays is never empty


def _aware(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _to_datetime(value: Any) -> Any:
    # YAML turns "2025-01-06" into a date; a bare date means midnight local time.
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0, 0))
    return value


class Schedule(_Model):
    """When the campaign runs: once at ``start``, by an RFC 5545 rule, or N days before yearly deadlines.

    Naive datetimes mean local time in ``timezone`` and are made aware on load. Recurrences are computed in
    local time (so "Monday 08:00" stays 08:00 local) and returned in UTC.
    """

    start: Annotated[datetime, BeforeValidator(_to_datetime)]
    rrule: str | None = None
    """RFC 5545 §3.3.10 RRULE body, e.g. ``FREQ=WEEKLY;INTERVAL=2;BYDAY=MO``; DTSTART is ``start``."""
    until: Annotated[datetime, BeforeValidator(_to_datetime)] | None = None
    """Last moment an occurrence may have (inclusive)."""
    before_deadlines: list[str] | None = None
    """Yearly deadlines as ``MM-DD`` (e.g. plan 143 §V: ``05-30`` and ``11-30``)."""
    days_before: Annotated[int, Field(ge=0, le=180)] | None = None
    """With ``before_deadlines``: run this many days before each deadline, at ``start``'s local time."""
    window: SendWindow | None = None
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                _("unknown time zone '%(zone)s' (use an IANA name like Asia/Ho_Chi_Minh)") % {"zone": value}
            ) from exc
        return value

    @field_validator("before_deadlines")
    @classmethod
    def _deadlines(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError(_("give at least one deadline as MM-DD, or leave before_deadlines out"))
        for item in value:
            match = _DEADLINE.match(item)
            if match is None:
                raise ValueError(
                    _("deadline '%(item)s' is not MM-DD (e.g. '05-30'; quote it in YAML)") % {"item": item}
                )
            try:
                date(2000, int(match.group(1)), int(match.group(2)))  # 2000 is a leap year: 02-29 allowed
            except ValueError as exc:
                raise ValueError(_("deadline '%(item)s' is not a day of the year") % {"item": item}) from exc
        return sorted(set(value))

    @field_validator("rrule")
    @classmethod
    def _rrule_body(cls, value: str | None) -> str | None:
        if value is None:
            return None
        body = value.strip()
        if body.upper().startswith("RRULE:"):
            body = body[len("RRULE:") :]
        if not body or "\n" in body or "DTSTART" in body.upper():
            raise ValueError(
                _("rrule is one RRULE body like FREQ=WEEKLY;INTERVAL=2;BYDAY=MO (DTSTART is start)")
            )
        return body

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        tz = self.zone
        object.__setattr__(self, "start", _aware(self.start, tz))
        if self.until is not None:
            object.__setattr__(self, "until", _aware(self.until, tz))
            if self.until < self.start:
                raise located("until", _("until is earlier than start"))
        if self.rrule is not None and self.before_deadlines is not None:
            raise located("before_deadlines", _("give either rrule or before_deadlines, not both"))
        if self.before_deadlines is not None and self.days_before is None:
            raise located("before_deadlines", _("days_before is required with before_deadlines"))
        if self.days_before is not None and self.before_deadlines is None:
            raise located("days_before", _("days_before only applies together with before_deadlines"))
        if self.rrule is not None:
            try:
                self._rule()
            except (ValueError, TypeError) as exc:  # dateutil reports every bad rule as ValueError
                raise located(
                    "rrule", _("invalid RRULE '%(rule)s': %(error)s") % {"rule": self.rrule, "error": exc}
                ) from exc
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _rule(self) -> RecurrenceRule:
        local_start = self.start.astimezone(self.zone)
        rule = rrulestr(self.rrule or "", dtstart=local_start)
        if not isinstance(rule, RecurrenceRule):  # rrulestr returns an rruleset only for multi-line input
            raise ValueError("expected a single RRULE")
        return rule

    def occurrences(self, after: datetime, before: datetime) -> list[datetime]:
        """Occurrences in ``[after, before)`` as aware UTC datetimes, sorted.

        The half-open interval lets consecutive ticks partition time without firing an occurrence twice.
        """
        if after.tzinfo is None or before.tzinfo is None:
            raise ValueError("occurrences() needs aware datetimes")
        if before <= after:
            return []
        tz = self.zone
        found: list[datetime]
        if self.rrule is not None:
            # between() with inc=True includes both ends; the end is dropped below.
            found = list(self._rule().between(after.astimezone(tz), before.astimezone(tz), inc=True))
        elif self.before_deadlines is not None:
            found = self._deadline_occurrences(after, before)
        else:
            found = [self.start]
        last = self.until
        return sorted(
            moment.astimezone(UTC)
            for moment in found
            if after <= moment < before and moment >= self.start and (last is None or moment <= last)
        )

    def next_occurrence(self, after: datetime) -> datetime | None:
        """The first occurrence at or after ``after`` (aware UTC), or None when the schedule is over."""
        if after.tzinfo is None:
            raise ValueError("next_occurrence() needs an aware datetime")
        if self.rrule is not None:
            moment: datetime | None = self._rule().after(after.astimezone(self.zone), inc=True)
            if moment is None or (self.until is not None and moment > self.until):
                return None
            return moment.astimezone(UTC)
        horizon = after + timedelta(days=2 * 366)  # a yearly deadline recurs within two years
        found = self.occurrences(after, horizon)
        return found[0] if found else None

    def _deadline_occurrences(self, after: datetime, before: datetime) -> list[datetime]:
        deadlines = self.before_deadlines or []
        days_before = self.days_before or 0
        tz = self.zone
        local_start = self.start.astimezone(tz)
        clock = local_start.time().replace(tzinfo=None)
        first_year = after.astimezone(tz).year
        last_year = before.astimezone(tz).year + 1  # a deadline early next year may fall before `before`
        found: list[datetime] = []
        for year in range(first_year, last_year + 1):
            for item in deadlines:
                month, day = (int(part) for part in item.split("-"))
                try:
                    deadline = date(year, month, day)
                except ValueError:  # 02-29 outside leap years
                    continue
                run_day = deadline - timedelta(days=days_before)
                found.append(datetime.combine(run_day, clock, tzinfo=tz))
        return found
