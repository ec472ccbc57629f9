"""Report periods: ``--period 2026-H1`` / ``2026-H2`` or ``--from`` / ``--to`` as one inclusive date range.

Plan 143 section V asks for reports before 30/5 and 30/11. Each half-year ends on a cut-off date from the
settings (``[reports] h1_cutoff``, ``h2_cutoff``, MM-DD) so that the agency has time to write the report:
``2026-H1`` runs from the day after 2025's ``h2_cutoff`` to 2026's ``h1_cutoff``, ``2026-H2`` from the day after
``h1_cutoff`` to ``h2_cutoff``. Any other range is given with ``--from`` and ``--to`` (docs/plan.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.settings_sections import ReportSettings

__all__ = ["Period", "PeriodError", "half_year", "parse_date", "period_from_options"]

_HALF = re.compile(r"^(\d{4})-H([12])$")


class PeriodError(UserError):
    """A period or date given on the command line cannot be read; the message names the option."""


@dataclass(frozen=True)
class Period:
    """Days ``start`` to ``end``, both included; ``label`` is how reports name it (``2026-H1`` or the dates)."""

    start: date
    end: date
    label: str

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end

    def describe(self) -> str:
        """The range in Vietnamese, as reports print it next to the label (an open end is left out)."""
        parts = [f"từ ngày {self.start:%d/%m/%Y}"] if self.start > date.min else []
        parts += [f"đến ngày {self.end:%d/%m/%Y}"] if self.end < date.max else []
        return " ".join(parts)


def _cutoff(year: int, month_day: str) -> date:
    month, day = (int(part) for part in month_day.split("-"))
    try:
        return date(year, month, day)
    except ValueError:  # 02-29 in a common year: the last day of February
        return date(year, month, day - 1)


def half_year(year: int, half: int, reports: ReportSettings) -> Period:
    """``year``-H``half`` with the settings' cut-offs."""
    if half == 1:
        start = _cutoff(year - 1, reports.h2_cutoff) + timedelta(days=1)
        end = _cutoff(year, reports.h1_cutoff)
    else:
        start = _cutoff(year, reports.h1_cutoff) + timedelta(days=1)
        end = _cutoff(year, reports.h2_cutoff)
    return Period(start, end, f"{year}-H{half}")


def parse_date(value: str, *, option: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PeriodError(
            _("%(option)s: '%(value)s' is not a date; write YYYY-MM-DD, e.g. 2026-05-15")
            % {"option": option, "value": value}
        ) from None


def period_from_options(
    *, period: str | None, start: str | None, end: str | None, reports: ReportSettings
) -> Period | None:
    """The range that ``--period`` or ``--from``/``--to`` give (None: neither, i.e. no limit).

    ``--period`` excludes the other two; ``--from`` alone runs to the last day there is, ``--to`` alone from the
    first (``date.min`` / ``date.max``)."""
    if period is not None:
        if start is not None or end is not None:
            raise PeriodError(_("--period cannot be combined with --from/--to: give one or the other"))
        match = _HALF.match(period.strip())
        if match is None:
            raise PeriodError(
                _("--period: '%(period)s' is not a half-year; write YYYY-H1 or YYYY-H2, e.g. 2026-H1")
                % {"period": period}
            )
        return half_year(int(match.group(1)), int(match.group(2)), reports)
    if start is None and end is None:
        return None
    first = parse_date(start, option="--from") if start is not None else date.min
    last = parse_date(end, option="--to") if end is not None else date.max
    if first > last:
        raise PeriodError(
            _("--from %(first)s is after --to %(last)s")
            % {"first": f"{first:%Y-%m-%d}", "last": f"{last:%Y-%m-%d}"}
        )
    return Period(first, last, f"{start or '…'} – {end or '…'}")
