"""The scale benchmark's harness (benchmarks/scale.py) end to end at a tiny N on SQLite, so that it cannot rot:
every phase runs in its child process and the row counts come out whole (speed is the benchmark's, not this
test's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scale import PHASES, run


@pytest.mark.slow  # six processes: the phases' and the CLI's
def test_every_phase_runs_and_counts_every_row(tmp_path: Path) -> None:
    n = 200
    lines: list[str] = []

    (result,) = run([n], ["sqlite"], tmp_path, echo=lines.append)

    phases = result["phases"]
    assert list(phases) == list(PHASES)
    assert phases["generate"]["rows"] == n
    imported = phases["import"]
    assert (imported["created"], imported["updated"], imported["skipped"], imported["problems"]) == (
        n,
        0,
        0,
        0,
    )
    assert phases["approve"]["channels"] == ["email", "sms"]
    # Every generated contact has a valid mobile and an e-mail of its own: one message per channel each.
    plan = phases["plan"]
    assert plan["rows"] == 2 * n
    assert plan["by_channel_status"] == {"email/queued": n, "sms/queued": n}
    assert plan["chunks"] >= 2
    assert all(figures["peak_rss_mib"] > 0 for figures in phases.values())
    assert len(lines) == len(PHASES)
    assert list((tmp_path / f"n{n}").iterdir()) == []  # the file and the working directory are removed
