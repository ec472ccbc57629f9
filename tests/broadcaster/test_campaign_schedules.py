"""Campaign schedules and send windows: recurrences in local time, days before yearly deadlines, one-off and
bounded runs, the schedule rules, the next time a window opens."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from broadcaster.campaigns.schema import Schedule, SendWindow

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def wall_clock(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A naive time, as a campaign file writes it: the schedule reads it in the campaign's time zone."""
    return datetime(year, month, day, hour, minute)  # noqa: DTZ001  naive on purpose, see above


def test_every_two_weeks_on_monday_morning_local_time() -> None:
    schedule = Schedule(start=wall_clock(2025, 1, 6, 8, 0), rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO")
    assert schedule.start == datetime(2025, 1, 6, 8, 0, tzinfo=VN)
    found = schedule.occurrences(utc(2025, 1, 1), utc(2025, 3, 1))
    assert found == [utc(2025, 1, 6, 1), utc(2025, 1, 20, 1), utc(2025, 2, 3, 1), utc(2025, 2, 17, 1)]
    assert all(moment.tzinfo is UTC for moment in found)
    assert all(m.astimezone(VN).isoweekday() == 1 and m.astimezone(VN).hour == 8 for m in found)


def test_quarterly_and_yearly() -> None:
    quarterly = Schedule(start=wall_clock(2025, 1, 20, 8, 0), rrule="FREQ=MONTHLY;INTERVAL=3")
    months = [m.astimezone(VN).month for m in quarterly.occurrences(utc(2025, 1, 1), utc(2026, 1, 1))]
    assert months == [1, 4, 7, 10]
    yearly = Schedule(start=wall_clock(2025, 9, 15, 9, 0), rrule="FREQ=YEARLY")
    found = yearly.occurrences(utc(2024, 1, 1), utc(2028, 1, 1))
    assert [m.astimezone(VN).date().isoformat() for m in found] == ["2025-09-15", "2026-09-15", "2027-09-15"]


def test_days_before_yearly_deadlines() -> None:
    schedule = Schedule(
        start=wall_clock(2025, 1, 1, 8, 30), before_deadlines=["11-30", "05-30"], days_before=7
    )
    found = schedule.occurrences(utc(2025, 1, 1), utc(2027, 1, 1))
    local = [m.astimezone(VN) for m in found]
    assert [m.date().isoformat() for m in local] == ["2025-05-23", "2025-11-23", "2026-05-23", "2026-11-23"]
    assert all((m.hour, m.minute) == (8, 30) for m in local)
    # Half-open interval: an occurrence exactly at `after` counts, one exactly at `before` does not.
    first = found[0]
    assert schedule.occurrences(first, first + timedelta(seconds=1)) == [first]
    assert schedule.occurrences(first - timedelta(days=1), first) == []
    assert schedule.next_occurrence(first + timedelta(seconds=1)) == found[1]


def test_one_off_until_and_next_occurrence() -> None:
    once = Schedule(start=wall_clock(2025, 6, 1, 9, 0))
    assert once.occurrences(utc(2025, 1, 1), utc(2026, 1, 1)) == [utc(2025, 6, 1, 2)]
    assert once.occurrences(utc(2025, 6, 2), utc(2026, 1, 1)) == []
    bounded = Schedule(start=wall_clock(2025, 1, 6, 8), rrule="FREQ=WEEKLY", until=wall_clock(2025, 1, 20, 8))
    assert len(bounded.occurrences(utc(2025, 1, 1), utc(2026, 1, 1))) == 3
    assert bounded.next_occurrence(utc(2025, 1, 21)) is None
    assert bounded.next_occurrence(utc(2025, 1, 7)) == utc(2025, 1, 13, 1)
    with pytest.raises(ValueError, match="aware"):
        once.occurrences(wall_clock(2025, 1, 1), utc(2026, 1, 1))


def test_schedule_rules_are_checked() -> None:
    with pytest.raises(ValidationError, match="days_before is required"):
        Schedule(start=wall_clock(2025, 1, 1), before_deadlines=["05-30"])
    with pytest.raises(ValidationError, match="not a day of the year"):
        Schedule(start=wall_clock(2025, 1, 1), before_deadlines=["02-30"], days_before=3)
    with pytest.raises(ValidationError, match="either rrule or before_deadlines"):
        Schedule(start=wall_clock(2025, 1, 1), rrule="FREQ=YEARLY", before_deadlines=["05-30"], days_before=1)


def test_send_window_next_open() -> None:
    window = SendWindow(start=time(7, 30), end=time(17, 0), weekdays=[1, 2, 3, 4, 5])
    saturday_noon = datetime(2025, 1, 11, 12, 0, tzinfo=VN)
    assert not window.contains(saturday_noon, VN)
    assert window.next_open(saturday_noon, VN) == datetime(2025, 1, 13, 7, 30, tzinfo=VN)
    monday_nine = datetime(2025, 1, 13, 9, 0, tzinfo=VN)
    assert window.contains(monday_nine, VN)
    assert window.next_open(monday_nine, VN) == monday_nine
