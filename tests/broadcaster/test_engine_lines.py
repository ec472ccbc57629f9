"""What ``broadcaster run`` and ``broadcaster demo`` print for a person to read or paste: one readable line
per tick with work (not a Python repr), and a closing hint that works as printed."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from broadcaster.beat import describe_tick
from broadcaster.outbox.scheduler import TickReport
from tests.broadcaster.test_cli import Cli, one_line


def test_a_tick_with_work_is_one_readable_line() -> None:
    report = TickReport(
        runs_created=[4, 5],
        missed=[("nhac-han-bao-cao", datetime(2025, 6, 2, 1, 30, tzinfo=UTC))],
        chunks=3,
        runs_completed=1,
        inbound_processed=40,
        swept_sending=2,
        swept_chunks=1,
    )
    assert describe_tick(report) == (
        "started run(s) 4, 5; missed occurrence of nhac-han-bao-cao at 08:30 02/06/2025; "
        "3 chunk(s) queued for sending; 1 run(s) completed; 40 receipt(s) or bounce(s) applied; "
        "2 message(s) stuck in sending swept; 1 lost chunk(s) re-queued"
    )
    assert describe_tick(TickReport()) is None


def test_run_once_prints_a_line_not_a_repr(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)
    output = one_line(Cli(monkeypatch)("run", "--once").stdout)
    assert "TickReport" not in output
    assert output.endswith("nothing to do")


@pytest.mark.slow
def test_the_demo_closing_hint_works_pasted_as_printed(tmp_path: Path) -> None:
    """Run as `make demo` runs it (the console script, venv not on PATH), then paste its last line into a
    fresh shell somewhere else, as the person at the keyboard (whose login is none of the demo's users)."""
    program = Path(sys.executable).with_name("broadcaster")
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "COLUMNS": "80"}
    demo = subprocess.run(  # noqa: S603  the installed broadcaster script
        [str(program), "demo", "--dir", "demo-workdir", "--contacts", "20"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    hint = demo.stdout.rstrip("\n").splitlines()[-1]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pasted = subprocess.run(  # noqa: S603  the hint the engine printed, run as a user would
        ["bash", "-c", hint],  # noqa: S607  bash from the clean PATH above
        cwd=elsewhere,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pasted.returncode == 0, (hint, pasted.stdout, pasted.stderr)
    assert "thong-bao-dich-vu-cong" in pasted.stdout
    # A one-off campaign completes with its run; LANG=C.UTF-8 names no language of ours: Vietnamese, the default.
    assert "Trạng thái: đã hoàn thành" in one_line(pasted.stdout)
