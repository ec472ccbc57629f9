"""Report figures without a database: each plan frequency's due intervals in a period, and the median / p95
read from the time-to-delivery buckets."""

from __future__ import annotations

from datetime import date

import pytest

from broadcaster.campaigns.plan import Frequency
from broadcaster.reporting.figures import due_intervals, quantile_seconds
from broadcaster.reporting.rollups import BUCKETS

H2 = (date(2026, 5, 16), date(2026, 11, 15))


def test_every_two_weeks_counts_whole_fortnights_from_the_first_day() -> None:
    spans = due_intervals(Frequency.EVERY_TWO_WEEKS, *H2)
    assert len(spans) == 13  # 184 days: 13 fortnights, the last 2 days not yet due
    assert spans[0] == (date(2026, 5, 16), date(2026, 5, 29))
    assert spans[-1] == (date(2026, 10, 31), date(2026, 11, 13))


@pytest.mark.parametrize(
    ("frequency", "dues"),
    [
        (
            Frequency.MONTHLY,
            [date(2026, m, d) for m, d in ((5, 31), (6, 30), (7, 31), (8, 31), (9, 30), (10, 31))],
        ),
        (Frequency.QUARTERLY, [date(2026, 6, 30), date(2026, 9, 30)]),
        (Frequency.SEMI_ANNUAL, [date(2026, 11, 15)]),
        (Frequency.YEARLY, []),  # 31/12 is after the period: not yet due
        (Frequency.AT_LEAST_ONCE_A_YEAR, []),
        (Frequency.ONGOING, []),
        (Frequency.AS_NEEDED, []),
    ],
)
def test_calendar_frequencies_are_due_at_the_ends_inside_the_period(
    frequency: Frequency, dues: list[date]
) -> None:
    assert [due for _first, due in due_intervals(frequency, *H2)] == dues


def test_each_year_ending_in_the_range_is_due_once_and_an_empty_range_asks_nothing() -> None:
    assert due_intervals(Frequency.YEARLY, date(2025, 11, 16), date(2026, 12, 31)) == [
        (date(2025, 11, 16), date(2025, 12, 31)),
        (date(2026, 1, 1), date(2026, 12, 31)),
    ]
    assert due_intervals(Frequency.SEMI_ANNUAL, date(2026, 2, 1), date(2026, 1, 1)) == []


def test_quantiles_are_the_upper_bound_of_the_bucket_the_rank_falls_in() -> None:
    buckets = [0] * (len(BUCKETS) + 1)
    assert quantile_seconds(buckets, 0.5) is None
    buckets[BUCKETS.index(10)] = 9  # nine deliveries in (7 s, 10 s]
    buckets[BUCKETS.index(600)] = 1  # one in (450 s, 600 s]
    assert quantile_seconds(buckets, 0.5) == 10.0
    assert quantile_seconds(buckets, 0.9) == 10.0
    assert quantile_seconds(buckets, 0.95) == 600.0
    buckets[-1] = 30  # slower than the last bound: reported as that bound
    assert quantile_seconds(buckets, 0.95) == float(BUCKETS[-1])
