"""Embedded against distributed, per channel and size: median messages/s, the distributed deployment's cost in
%, median receipt lag, and the CPU each process spent per message (benchmarks/README.md, "Embedded and
distributed")."""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from benchmarks.report import Measurement

__all__ = ["TARGET_DISTRIBUTED_COST", "deployment_costs", "print_deployments"]

# The issue: on this 2-core machine the distributed deployment costs at most 10 % of the embedded throughput.
TARGET_DISTRIBUTED_COST = 10.0


def _cpu_ms_per_message(runs: list[Measurement]) -> dict[str, float]:
    """Median over the runs of each process family's CPU milliseconds per message sent."""
    names = sorted({name for m in runs for name in m.engine.cpu_by_process})
    return {
        name: round(
            median(
                m.engine.cpu_by_process.get(name, 0.0) * 1000 / m.engine.sent for m in runs if m.engine.sent
            ),
            3,
        )
        for name in names
    }


def deployment_costs(measurements: list[Measurement]) -> list[dict[str, Any]]:
    costs: list[dict[str, Any]] = []
    for channel, count, binds in dict.fromkeys((m.channel, m.count, m.binds) for m in measurements):
        runs = {
            deployment: [
                m
                for m in measurements
                if (m.channel, m.count, m.binds, m.engine.deployment) == (channel, count, binds, deployment)
            ]
            for deployment in ("embedded", "distributed")
        }
        if not runs["embedded"] or not runs["distributed"]:
            continue
        entry: dict[str, Any] = {
            "channel": channel,
            "n": count,
            "binds": binds,
            "target_percent": TARGET_DISTRIBUTED_COST,
        }
        for deployment, done in runs.items():
            lags = [m.engine.receipt_lag_seconds for m in done if m.engine.receipt_lag_seconds is not None]
            entry[deployment] = {
                "rates": [round(m.engine.rate, 1) for m in done],
                "median_rate": round(median(m.engine.rate for m in done), 1),
                "receipt_lags": [round(lag, 2) for lag in lags],
                "median_receipt_lag": round(median(lags), 2) if lags else None,
                "cpu_ms_per_message": _cpu_ms_per_message(done),
                "load_averages": [list(m.engine.load_average) for m in done],
            }
        embedded, distributed = entry["embedded"]["median_rate"], entry["distributed"]["median_rate"]
        entry["cost_percent"] = round((embedded - distributed) / embedded * 100, 1) if embedded else None
        costs.append(entry)
    return costs


def print_deployments(measurements: list[Measurement], console: Console) -> None:
    costs = deployment_costs(measurements)
    if not costs:
        return
    table = Table(title="embedded vs distributed (medians of the alternating runs)")
    for column in (
        "channel",
        "N",
        "msgs/s embedded (runs)",
        "msgs/s distributed (runs)",
        "cost %",
        "receipt lag s emb|dist",
        "CPU ms/msg distributed",
    ):
        table.add_column(column, justify="right")
    for c in costs:
        cost = c["cost_percent"]
        style = "green" if cost is not None and cost <= TARGET_DISTRIBUTED_COST else "red"
        lags = [c[d]["median_receipt_lag"] for d in ("embedded", "distributed")]
        table.add_row(
            c["channel"],
            f"{c['n']:,}",
            f"{c['embedded']['median_rate']:,.0f} ({', '.join(f'{r:,.0f}' for r in c['embedded']['rates'])})",
            f"{c['distributed']['median_rate']:,.0f} "
            f"({', '.join(f'{r:,.0f}' for r in c['distributed']['rates'])})",
            f"[{style}]{cost:.1f}[/]" if cost is not None else "-",
            "|".join("-" if lag is None else f"{lag:.2f}" for lag in lags),
            ", ".join(f"{k} {v:.2f}" for k, v in c["distributed"]["cpu_ms_per_message"].items()),
        )
    console.print(table)
    console.print(
        f"cost % = (embedded - distributed) / embedded of the median msgs/s; target <= "
        f"{TARGET_DISTRIBUTED_COST:.0f} %. Receipt lag = last receipt applied - last hand-over. CPU: "
        "postgresql = the run's server processes, broker = the broker server's CPU during the run.",
        style="dim",
    )
