"""The scale benchmark's harness (benchmarks/scale.py) end to end at a tiny N on SQLite, so that it cannot rot:
every phase runs in its child process and the row counts come out whole (speed is the benchmark's, not this
test's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.scale import PHASES, SEND_PHASES, run
from benchmarks.scale_send import SendOptions, add_accounts
from broadcaster.runtime import worker_specs
from broadcaster.settings import load_settings
from broadcaster.workdir import _config_text


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


@pytest.mark.slow  # the phases' processes, the engine's workers and the SMSC peer
def test_send_ends_every_message_terminal_and_reports_every_process(tmp_path: Path) -> None:
    n = 200
    lines: list[str] = []

    (result,) = run([n], ["sqlite"], tmp_path, echo=lines.append, send=SendOptions(receipt_delay=0.05))

    phases = result["phases"]
    assert list(phases) == list(SEND_PHASES)
    assert phases["approve"]["channels"] == ["sms"]
    sent = phases["send"]
    assert (sent["planned"], sent["terminal"], sent["lost"], sent["timed_out"]) == (n, n, 0, False)
    assert sent["statuses"] == {"delivered": n}
    rss = sent["peak_rss_mib_by_process"]
    assert {"main", "gateway-sms_main", "inbound", "driver (tick)", "smsc peer"} <= set(rss)
    assert all(mib > 0 for mib in rss.values())
    assert any("none lost" in line for line in lines)


def test_more_sms_accounts_are_copies_of_the_first_with_a_route_sharing_evenly(tmp_path: Path) -> None:
    config = tmp_path / "broadcaster.toml"
    config.write_text(_config_text({}, fresh=True), encoding="utf-8")  # what `init` writes

    add_accounts(config, 3)

    settings = load_settings(config)
    assert settings.routes == {
        "sms_main": {"default": [("sms_main", 1.0), ("sms_main_2", 1.0), ("sms_main_3", 1.0)]}
    }
    first = settings.provider("sms_main").options()
    assert settings.provider("sms_main_3").options() == first
    assert [spec.name for spec in worker_specs(settings) if spec.gateways] == [
        "gateway-sms_main",
        "gateway-sms_main_2",
        "gateway-sms_main_3",
    ]
