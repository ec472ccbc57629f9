"""The results of a benchmark: one measurement per channel and size, printed as tables and written as JSON."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.binds_report import bind_scaling
from benchmarks.deployments_report import deployment_costs
from benchmarks.engine_run import EngineResult
from benchmarks.workdir import CHANNELS

__all__ = ["TARGET_RATIO", "Measurement", "audit_costs", "print_audit_cost", "print_tables", "write_json"]

# Engine ÷ raw per channel (issue #15): SMS on as many binds as the raw client, e-mail against one connection.
TARGET_RATIO = {"email": 1.2, "sms": 1.0}
# What the per-window audit entries may cost (issue #13): under 5 % of the send rate.
TARGET_AUDIT_COST = 5.0


@dataclass
class Measurement:
    channel: str
    count: int
    peer: str
    engine: EngineResult
    raw: list[dict[str, Any]]  # before and after the engine
    setup_seconds: float
    audit_deliveries: str = "on"  # [audit] deliveries of this run
    binds: int = 1  # SMS: binds of the engine's account and of the raw client

    @property
    def raw_rate(self) -> float:
        rates = [float(r["rate"]) for r in self.raw]
        return sum(rates) / len(rates) if rates else 0.0

    @property
    def ratio(self) -> float:
        return self.engine.rate / self.raw_rate if self.raw_rate else 0.0

    def to_json(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "channel": self.channel,
            "n": self.count,
            "audit_deliveries": self.audit_deliveries,
            "binds": self.binds,
            "peer": self.peer,
            "engine": {
                "rate": round(engine.rate, 1),
                "sent": engine.sent,
                "planned": engine.planned,
                "statuses": engine.statuses,
                "send_seconds": round(engine.send_seconds, 3),
                "wall_seconds": round(engine.wall_seconds, 3),
                "receipts_seconds": None
                if engine.receipts_seconds is None
                else round(engine.receipts_seconds, 3),
                "delivered": engine.delivered,
                "peak_rss_kib": engine.peak_rss_kib,
                "driver_peak_rss_kib": engine.driver_peak_rss_kib,
                "timed_out": engine.timed_out,
                "audit_entries": engine.audit_entries,
                "cpu_seconds": round(engine.cpu_seconds, 2),
                "deployment": engine.deployment,
                "cpu_by_process": {k: round(v, 2) for k, v in engine.cpu_by_process.items()},
                "receipt_lag_seconds": engine.receipt_lag_seconds,
                "load_average": list(engine.load_average),
                "restarts": engine.restarts,
            },
            "raw": self.raw,
            "raw_rate": round(self.raw_rate, 1),
            "ratio": round(self.ratio, 3),
            "target_ratio": TARGET_RATIO[self.channel],
            "setup_seconds": round(self.setup_seconds, 2),
        }


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def print_tables(measurements: list[Measurement], console: Console) -> None:
    for channel in CHANNELS:
        rows = [m for m in measurements if m.channel == channel]
        if not rows:
            continue
        raw_name = (
            "raw aiosmtplib, 1 connection"
            if channel == "email"
            else "raw smpplib, window 64 per bind, as many binds as the engine"
        )
        processes = sorted({name for m in rows for name in m.engine.peak_rss_kib})
        table = Table(title=f"{channel}: engine vs {raw_name}\npeer: {rows[0].peer}")
        for column in ("N", "audit", *(["binds"] if channel == "sms" else []), "engine/s", "raw/s"):
            table.add_column(column, justify="right")
        for column in ("ratio", "send s", "wall s"):
            table.add_column(column, justify="right")
        if channel == "sms":
            table.add_column("receipts s\nengine|raw", justify="right")
        table.add_column("peak RSS MiB\n" + " | ".join([*processes, "driver"]), justify="right")
        for m in rows:
            ratio_style = "green" if m.ratio >= TARGET_RATIO[channel] else "red"
            cells = [
                f"{m.count:,}",
                m.audit_deliveries,
                *([str(m.binds)] if channel == "sms" else []),
                f"{m.engine.rate:,.0f}",
                f"{m.raw_rate:,.0f}",
                f"[{ratio_style}]{m.ratio:.2f}[/]",
                f"{m.engine.send_seconds:.1f}",
                f"{m.engine.wall_seconds:.1f}",
            ]
            if channel == "sms":
                raw_receipts = [r.get("receipts_seconds") for r in m.raw]
                raw_text = "/".join("-" if r is None else f"{r:.1f}" for r in raw_receipts)
                engine_text = "-" if m.engine.receipts_seconds is None else f"{m.engine.receipts_seconds:.1f}"
                cells.append(f"{engine_text}|{raw_text}")
            rss = [_mib(m.engine.peak_rss_kib.get(name, 0)) for name in processes]
            cells.append(" | ".join([*rss, _mib(m.engine.driver_peak_rss_kib)]))
            table.add_row(*cells)
        console.print(table)
        console.print(
            "engine/s: sent / (last sent_at - first claimed_at); raw/s: mean of the raw runs before/after; "
            "wall: plan enqueued to nothing left to send; RSS: VmHWM per process.",
            style="dim",
        )


def audit_costs(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per channel and N measured both ways: the mean send rate with ``[audit] deliveries`` on and off, and
    the cost of the entries in % of the rate without them (negative: within the noise, on was faster)."""
    costs: list[dict[str, Any]] = []
    for channel, count, binds in dict.fromkeys((m.channel, m.count, m.binds) for m in measurements):
        rates: dict[str, list[float]] = {"on": [], "off": []}
        walls: dict[str, list[float]] = {"on": [], "off": []}
        cpus: dict[str, list[float]] = {"on": [], "off": []}
        for m in measurements:
            if (m.channel, m.count, m.binds) == (channel, count, binds):
                rates[m.audit_deliveries].append(m.engine.rate)
                walls[m.audit_deliveries].append(m.engine.wall_seconds)
                cpus[m.audit_deliveries].append(m.engine.cpu_seconds)
        if not rates["on"] or not rates["off"]:
            continue
        on, off = (sum(r) / len(r) for r in (rates["on"], rates["off"]))
        cpu_on, cpu_off = (sum(c) / len(c) for c in (cpus["on"], cpus["off"]))
        costs.append(
            {
                "channel": channel,
                "n": count,
                "binds": binds,
                "rate_on": round(on, 1),
                "rate_off": round(off, 1),
                "runs": {"on": len(rates["on"]), "off": len(rates["off"])},
                "wall_on": round(sum(walls["on"]) / len(walls["on"]), 2),
                "wall_off": round(sum(walls["off"]) / len(walls["off"]), 2),
                "cost_percent": round((off - on) / off * 100, 2) if off else None,
                # The engine's CPU time for the same send: steadier than the rate on a shared machine.
                "cpu_on": round(cpu_on, 2),
                "cpu_off": round(cpu_off, 2),
                "cpu_cost_percent": round((cpu_on - cpu_off) / cpu_off * 100, 2) if cpu_off else None,
                "target_percent": TARGET_AUDIT_COST,
            }
        )
    return costs


def print_audit_cost(measurements: list[Measurement], console: Console) -> None:
    costs = audit_costs(measurements)
    if not costs:
        return
    table = Table(title="cost of the delivery audit entries (\\[audit] deliveries on vs off, same send)")
    columns = (
        "channel",
        "N",
        "runs on|off",
        "on msgs/s",
        "off msgs/s",
        "cost %",
        "wall s on|off",
        "CPU s on|off",
        "CPU +%",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for c in costs:
        cost = c["cost_percent"]
        style = "green" if cost is not None and cost < TARGET_AUDIT_COST else "red"
        table.add_row(
            c["channel"],
            f"{c['n']:,}",
            f"{c['runs']['on']}|{c['runs']['off']}",
            f"{c['rate_on']:,.0f}",
            f"{c['rate_off']:,.0f}",
            f"[{style}]{cost:.1f}[/]" if cost is not None else "-",
            f"{c['wall_on']:.1f}|{c['wall_off']:.1f}",
            f"{c['cpu_on']:.1f}|{c['cpu_off']:.1f}",
            f"{c['cpu_cost_percent']:.1f}" if c["cpu_cost_percent"] is not None else "-",
        )
    console.print(table)
    console.print(
        f"cost % = (off - on) / off of the mean engine msgs/s; target < {TARGET_AUDIT_COST:.0f} %.",
        style="dim",
    )


def write_json(path: Path, measurements: list[Measurement], argv: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "command": " ".join(["python -m benchmarks.run", *argv]),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "notes": [
            "engine msgs/s = sent / (last sent_at - first claimed_at) of the run, from the database",
            "raw msgs/s = mean of the raw client run just before and just after the engine, same peer",
            "wall = from enqueuing plan_run to nothing left to send (includes planning)",
            "peak RSS = VmHWM of each engine worker just before it stops, and of the driving process (tick, "
            "progress polling; a fresh process per run)",
        ],
        "results": [m.to_json() for m in measurements],
        "audit_cost": audit_costs(measurements),
        "deployments": deployment_costs(measurements),
        "binds": bind_scaling(measurements),
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
