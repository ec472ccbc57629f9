"""What ``send`` (without ``--wait``) and ``campaigns retry-failed`` say will send a queued run: the embedded
engine (``broadcaster run``) or, with a RabbitMQ or Redis broker, the workers and the beat (issue 16, defect 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcaster.cli.deployment import distributed, queued_line
from broadcaster.settings import CONFIG_FILENAME, load_settings
from tests.broadcaster.conftest import FIXTURES, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN, CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # fixtures

EMBEDDED = "the engine's workers (`broadcaster run`)"
DISTRIBUTED = "the workers (`broadcaster worker`) and the beat (`broadcaster beat`)"


@pytest.mark.parametrize(
    ("broker", "senders"),
    [
        (None, EMBEDDED),
        ("amqp://guest:guest@127.0.0.1:5672//", DISTRIBUTED),
        ("pyamqp://guest@rabbit//", DISTRIBUTED),
        ("redis://127.0.0.1:6379/0", DISTRIBUTED),
        ("rediss://cache.example.vn:6380/1", DISTRIBUTED),
    ],
)
def test_the_queued_line_names_what_sends_in_this_deployment(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, broker: str | None, senders: str
) -> None:
    if broker is not None:
        monkeypatch.setenv("BROADCASTER_BROKER__URL", broker)
    settings = load_settings(workdir / CONFIG_FILENAME)

    assert distributed(settings) == (senders == DISTRIBUTED)
    assert queued_line(settings, 7) == f"Run 7 queued; {senders} will send it."
    assert queued_line(settings, 7, window_closed=True) == (
        f"Run 7 stays queued; {senders} send it when the window opens."
    )


def test_send_without_wait_in_the_embedded_deployment_names_broadcaster_run(
    cli: Cli, team: None, workdir: Path
) -> None:
    cli("contacts", "import", str(FIXTURES / "danh-ba.csv"), user="bien_tap")
    write_campaign(workdir)
    [loaded] = cli.json("campaigns", "load", CAMPAIGN_FILE, user="bien_tap")
    cli("campaigns", "submit", CAMPAIGN, user="bien_tap")
    cli("campaigns", "approve", CAMPAIGN, "--hash", loaded["content_hash"][:12], user="phe_duyet")

    shown = one_line(cli("send", CAMPAIGN, user="bien_tap").stdout)

    assert f"queued; {EMBEDDED} will send it." in shown
