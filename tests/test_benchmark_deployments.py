"""The embedded-against-distributed summary of the engine benchmark: medians of the alternating runs, the
distributed deployment's cost in %, receipt lag and CPU per message (benchmarks/README.md, "Embedded and
distributed")."""

from __future__ import annotations

from benchmarks.deployments_report import deployment_costs
from benchmarks.engine_run import EngineResult
from benchmarks.report import Measurement


def _run(deployment: str, rate: float, *, lag: float | None = None, main_cpu: float = 10.0) -> Measurement:
    engine = EngineResult(
        sent=1000,
        send_seconds=1000 / rate,
        deployment=deployment,
        receipt_lag_seconds=lag,
        cpu_by_process={"main": main_cpu},
    )
    return Measurement(channel="sms", count=1000, peer="smsc", engine=engine, raw=[], setup_seconds=0.0)


def test_medians_of_alternating_runs_and_the_cost_of_the_distributed_one() -> None:
    runs = [
        _run("embedded", 1000, lag=0.3),
        _run("distributed", 880, lag=0.5, main_cpu=12.0),
        _run("embedded", 500, lag=0.2),  # a run slowed by the shared machine: the median ignores it
        _run("distributed", 900, lag=0.4, main_cpu=11.0),
        _run("embedded", 950, lag=0.4),
        _run("distributed", 450, lag=0.9, main_cpu=13.0),
    ]

    (cost,) = deployment_costs(runs)

    assert cost["embedded"]["median_rate"] == 950.0
    assert cost["distributed"]["median_rate"] == 880.0
    assert cost["cost_percent"] == round((950 - 880) / 950 * 100, 1)
    assert cost["embedded"]["median_receipt_lag"] == 0.3
    assert cost["distributed"]["median_receipt_lag"] == 0.5
    assert cost["distributed"]["cpu_ms_per_message"] == {"main": 12.0}  # median of 12, 11, 13 s per 1,000


def test_nothing_to_compare_without_both_deployments() -> None:
    assert deployment_costs([_run("embedded", 1000), _run("embedded", 900)]) == []
