"""The planning line of ``send --wait``: messages stored per second since the first sample, and the time
left from how far the checkpoint has come through the contacts' ids."""

from __future__ import annotations

import pytest

from broadcaster import i18n
from broadcaster.plan_progress import PlanSample, PlanWatch, duration


def test_the_rate_counts_from_the_first_sample_and_the_time_left_from_the_checkpoint() -> None:
    watch = PlanWatch()
    with i18n.using("vi"):
        assert watch.line(PlanSample(at=100.0, planned=5_000, position=5_000), last_id=400_000) == (
            "đang lập danh sách"
        )
        line = watch.line(PlanSample(at=110.0, planned=205_000, position=105_000), last_id=400_000)
    # 200,000 messages in 10 s; 100,000 ids in 10 s, 295,000 to go: 29.5 s.
    assert line == "đang lập danh sách: 20.000 tin/giây, còn khoảng 30 giây"
    with i18n.using("en"):
        line = watch.line(PlanSample(at=190.0, planned=1_605_000, position=305_000), last_id=400_000)
    assert line == "planning: 17,778 messages/s, about 28 s left"  # 95,000 ids at 300,000 in 90 s


def test_nothing_stored_yet_or_past_the_last_id_gives_no_rate_or_no_time_left() -> None:
    watch = PlanWatch()
    with i18n.using("en"):
        watch.line(PlanSample(at=0.0, planned=0, position=0), last_id=1_000)
        assert watch.line(PlanSample(at=5.0, planned=0, position=0), last_id=1_000) == "planning"
        assert watch.line(PlanSample(at=6.0, planned=600, position=1_000), last_id=1_000) == (
            "planning: 100 messages/s"
        )


@pytest.mark.parametrize(
    ("seconds", "english", "vietnamese"),
    [(45.4, "45 s", "45 giây"), (125, "2 min 05 s", "2 phút 05 giây"), (3725, "1 h 02 min", "1 giờ 02 phút")],
)
def test_durations(seconds: float, english: str, vietnamese: str) -> None:
    with i18n.using("en"):
        assert duration(seconds) == english
    with i18n.using("vi"):
        assert duration(seconds) == vietnamese
