"""The report's three charts as PNG: messages by channel per month, delivery rate per plan item, plan
compliance per item (issue #12, "Formats"). The DOCX embeds them one by one; ``write`` puts all three on one
page for ``--format png``.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no global state), in DejaVu Sans,
which ships with matplotlib and has the Vietnamese letters. The PNG carries no software or time stamp, so the
same report gives the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from broadcaster.reporting import vietnamese_numbers as vn
from broadcaster.reporting.chart_data import compliance_bars, delivery_bars, monthly_bars
from broadcaster.reporting.model import Report

# matplotlib is imported where a chart is drawn, not here: it costs about a second, and `broadcaster serve`
# imports this module (the reports page) long before anyone asks for a chart.
if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["CHARTS", "Chart", "render", "write"]

_DPI = 150
_SIZE = (6.3, 3.2)  # inches: 16 cm wide, the DOCX's text width
_NOTHING = "Không có số liệu trong kỳ báo cáo"


def _style() -> AbstractContextManager[None]:
    import matplotlib

    return matplotlib.rc_context({"font.family": "DejaVu Sans", "font.size": 9})


def _empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, _NOTHING, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _integer_ticks(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _monthly(ax: Axes, report: Report) -> None:
    bars = monthly_bars(report)
    if not bars:
        _empty(ax)
        return
    months = sorted({bar.month for bar in bars})
    channels = sorted({bar.channel for bar in bars})
    sent = {(bar.month, bar.channel): bar.sent for bar in bars}
    names = {row.key: row.label for row in report.by_channel}  # "Thư điện tử" rather than "email"
    width = 0.8 / len(channels)
    for index, channel in enumerate(channels):
        positions = [m + index * width - 0.4 + width / 2 for m in range(len(months))]
        heights = [sent.get((month, channel), 0) for month in months]
        ax.bar(positions, heights, width, label=names.get(channel, channel))
    ax.set_xticks(range(len(months)), [f"{month[5:]}/{month[:4]}" for month in months])
    ax.set_xlabel("Tháng")
    ax.set_ylabel("Số tin đã gửi")
    _integer_ticks(ax)
    ax.legend(title="Kênh")


def _delivery(ax: Axes, report: Report) -> None:
    bars = [bar for bar in delivery_bars(report) if bar.rate is not None]
    if not bars:
        _empty(ax)
        return
    labels = [bar.plan_item for bar in bars]
    rates = [100 * (bar.rate or 0.0) for bar in bars]
    ax.barh(range(len(bars)), rates, color="#2e7d32")
    ax.set_yticks(range(len(bars)), labels)
    ax.invert_yaxis()  # the plan's order, top to bottom
    ax.set_xlim(0, 100)
    ax.set_xlabel("Tỷ lệ chuyển thành công (%)")
    for index, rate in enumerate(rates):
        # Inside the bar when it is long, so the label never runs past 100 %.
        inside = rate > 80
        x, align, colour = (rate - 1, "right", "white") if inside else (rate + 1, "left", "black")
        ax.text(x, index, vn.percent(rate / 100), va="center", ha=align, color=colour)


def _compliance(ax: Axes, report: Report) -> None:
    bars = compliance_bars(report)
    if not bars:
        _empty(ax)
        return
    positions = range(len(bars))
    ax.bar(
        [p - 0.2 for p in positions], [bar.required for bar in bars], 0.4, label="Yêu cầu", color="#9e9e9e"
    )
    ax.bar(
        [p + 0.2 for p in positions], [bar.done for bar in bars], 0.4, label="Đã thực hiện", color="#1565c0"
    )
    ax.set_xticks(list(positions), [bar.plan_item for bar in bars])
    ax.set_xlabel("Mục kế hoạch")
    ax.set_ylabel("Số lần")
    _integer_ticks(ax)
    ax.legend()


@dataclass(frozen=True)
class Chart:
    name: str  # file-like name, e.g. for the DOCX's alt text
    title: str
    draw: Callable[[Axes, Report], None]


CHARTS = (
    Chart("monthly_by_channel", "Số tin nhắn đã gửi theo kênh và tháng", _monthly),
    Chart("delivery_by_plan_item", "Tỷ lệ chuyển thành công theo mục kế hoạch", _delivery),
    Chart("compliance_by_plan_item", "Mức độ thực hiện kế hoạch theo mục", _compliance),
)


def _png(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = io.BytesIO()
    FigureCanvasAgg(figure)
    # No "Software" entry: the PNG is then the same bytes whatever matplotlib version drew it.
    figure.savefig(out, format="png", dpi=_DPI, metadata={"Software": None})
    return out.getvalue()


def render(report: Report, chart: Chart) -> bytes:
    """One chart as PNG bytes."""
    from matplotlib.figure import Figure

    with _style():
        figure = Figure(figsize=_SIZE, layout="constrained")
        ax = figure.add_subplot()
        ax.set_title(chart.title)
        chart.draw(ax, report)
        return _png(figure)


def write(report: Report, out: BinaryIO) -> None:
    """The three charts, one under the other, as one PNG."""
    from matplotlib.figure import Figure

    with _style():
        figure = Figure(figsize=(_SIZE[0], _SIZE[1] * len(CHARTS)), layout="constrained")
        for ax, chart in zip(figure.subplots(len(CHARTS)), CHARTS, strict=True):
            ax.set_title(chart.title)
            chart.draw(ax, report)
        out.write(_png(figure))
