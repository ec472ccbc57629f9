"""Report periods: half-years end on the settings' cut-offs, any --from/--to range is allowed, bad input says
which option is wrong."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from broadcaster.reporting.periods import Period, PeriodError, half_year, period_from_options
from broadcaster.settings_sections import ReportSettings

DEFAULTS = ReportSettings()


def test_half_years_run_between_the_default_cut_offs() -> None:
    first = period_from_options(period="2026-H1", start=None, end=None, reports=DEFAULTS)
    second = period_from_options(period="2026-H2", start=None, end=None, reports=DEFAULTS)
    assert first == Period(date(2025, 11, 16), date(2026, 5, 15), "2026-H1")
    assert second == Period(date(2026, 5, 16), date(2026, 11, 15), "2026-H2")
    # Consecutive half-years leave no day out and count none twice.
    assert half_year(2027, 1, DEFAULTS).start == date(2026, 11, 16)
    assert date(2026, 5, 15) in first
    assert date(2026, 5, 15) not in second
    assert first.describe() == "từ ngày 16/11/2025 đến ngày 15/05/2026"


def test_cut_offs_come_from_the_settings() -> None:
    reports = ReportSettings(h1_cutoff="05-29", h2_cutoff="11-29")
    assert half_year(2026, 1, reports) == Period(date(2025, 11, 30), date(2026, 5, 29), "2026-H1")
    assert half_year(2026, 2, reports).start == date(2026, 5, 30)
    leap = ReportSettings(h1_cutoff="02-29", h2_cutoff="08-31")
    assert half_year(2027, 1, leap).end == date(2027, 2, 28)  # no 29 February in 2027
    assert half_year(2028, 1, leap).end == date(2028, 2, 29)


@pytest.mark.parametrize(
    ("h1", "h2", "words"),
    [
        ("11-15", "05-15", "must come before"),
        ("02-30", "11-15", "not a day of the year"),
        ("5-15", "11-15", "pattern"),
    ],
)
def test_bad_cut_offs_are_refused(h1: str, h2: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        ReportSettings(h1_cutoff=h1, h2_cutoff=h2)


def test_any_range_is_allowed_and_open_ends_are_unbounded() -> None:
    chosen = period_from_options(period=None, start="2026-01-01", end="2026-03-31", reports=DEFAULTS)
    assert chosen is not None
    assert (chosen.start, chosen.end) == (date(2026, 1, 1), date(2026, 3, 31))
    since = period_from_options(period=None, start="2026-01-01", end=None, reports=DEFAULTS)
    assert since is not None
    assert since.end == date.max
    assert period_from_options(period=None, start=None, end=None, reports=DEFAULTS) is None
    assert since.describe() == "từ ngày 01/01/2026"
    until = period_from_options(period=None, start=None, end="2026-03-31", reports=DEFAULTS)
    assert until is not None
    assert (until.start, until.describe()) == (date.min, "đến ngày 31/03/2026")


@pytest.mark.parametrize(
    ("period", "start", "end", "words"),
    [
        ("2026-H3", None, None, "--period: '2026-H3' is not a half-year"),
        ("2026", None, None, "write YYYY-H1 or YYYY-H2"),
        ("2026-H1", "2026-01-01", None, "cannot be combined"),
        (None, "01/02/2026", None, "--from: '01/02/2026' is not a date"),
        (None, None, "2026-02-30", "--to: '2026-02-30' is not a date"),
        (None, "2026-03-01", "2026-02-01", "--from 2026-03-01 is after --to 2026-02-01"),
    ],
)
def test_bad_periods_name_the_option(
    period: str | None, start: str | None, end: str | None, words: str
) -> None:
    with pytest.raises(PeriodError) as caught:
        period_from_options(period=period, start=start, end=end, reports=DEFAULTS)
    assert words in str(caught.value)
