"""SMS on 1, 2, 4 … binds (``--binds``): per bind count, the median over the rounds of the engine's messages/s
and of its ratio to the raw client on as many binds, and how the engine's median grows from the fewest binds
measured (issue #15: ≥ 1.0× raw, throughput growing with binds until the CPU is the limit)."""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from benchmarks.report import Measurement

__all__ = ["bind_scaling", "print_binds"]


def bind_scaling(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """One entry per SMS size and bind count, when more than one bind count was measured."""
    sms = [m for m in measurements if m.channel == "sms"]
    entries: list[dict[str, Any]] = []
    for count in dict.fromkeys(m.count for m in sms):
        runs = [m for m in sms if m.count == count]
        bind_counts = sorted({m.binds for m in runs})
        if len(bind_counts) < 2:
            continue
        base: float | None = None
        for binds in bind_counts:
            done = [m for m in runs if m.binds == binds]
            rate = median(m.engine.rate for m in done)
            raw = median(m.raw_rate for m in done)
            base = rate if base is None else base
            entries.append(
                {
                    "n": count,
                    "binds": binds,
                    "rates": [round(m.engine.rate, 1) for m in done],
                    "ratios": [round(m.ratio, 3) for m in done],
                    "median_rate": round(rate, 1),
                    "median_raw_rate": round(raw, 1),
                    "median_ratio": round(median(m.ratio for m in done), 3),
                    "growth": round(rate / base, 2) if base else None,
                    "raw_growth": None,  # filled below, against the fewest binds' raw median
                    "load_averages": [list(m.engine.load_average) for m in done],
                }
            )
        first_raw = next(e["median_raw_rate"] for e in entries if e["n"] == count)
        for entry in entries:
            if entry["n"] == count:
                entry["raw_growth"] = round(entry["median_raw_rate"] / first_raw, 2) if first_raw else None
    return entries


def print_binds(measurements: list[Measurement], console: Console) -> None:
    entries = bind_scaling(measurements)
    if not entries:
        return
    table = Table(title="SMS by binds (medians of the rounds; raw on as many binds, one process each)")
    for column in ("N", "binds", "engine msgs/s (runs)", "raw msgs/s", "ratio (runs)", "growth engine|raw"):
        table.add_column(column, justify="right")
    for e in entries:
        table.add_row(
            f"{e['n']:,}",
            str(e["binds"]),
            f"{e['median_rate']:,.0f} ({', '.join(f'{r:,.0f}' for r in e['rates'])})",
            f"{e['median_raw_rate']:,.0f}",
            f"{e['median_ratio']:.2f} ({', '.join(f'{r:.2f}' for r in e['ratios'])})",
            f"{e['growth']:.2f}|{e['raw_growth']:.2f}",
        )
    console.print(table)
    console.print(
        "growth = median msgs/s ÷ the fewest binds' median; ratio = engine ÷ mean of the raw runs just before "
        "and after.",
        style="dim",
    )
