"""An unknown purpose, in a campaign file or in a ``[consent.purposes.NAME]`` settings section, is one clear
error that names it, and changes nothing (docs/domain.md §1.1: every campaign declares its purpose)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import Result

from broadcaster.context import AppContext
from tests.broadcaster.conftest import database_dump, write_campaign
from tests.broadcaster.test_cli import CAMPAIGN_FILE, Cli, cli, one_line, team

__all__ = ["cli", "team"]  # the fixtures, shared with test_cli


def _said(result: Result) -> str:
    return one_line(result.stdout + result.stderr)


def test_an_unknown_purpose_in_a_campaign_file_is_named_and_nothing_is_loaded(
    cli: Cli, context: AppContext, team: None, workdir: Path
) -> None:
    write_campaign(workdir, purpose="marketing")
    before = database_dump(context.engine)

    loaded = _said(cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap", expect=1))
    validated = _said(cli("campaigns", "validate", CAMPAIGN_FILE, user="bien_tap", expect=1))

    for message in (loaded, validated):
        assert f"{CAMPAIGN_FILE}:7: purpose: unknown purpose 'marketing'" in message, message
        assert "known purposes: official_duty, public_information, advertising" in message
    assert "nothing was loaded" in loaded
    assert database_dump(context.engine) == before


def test_an_unknown_purpose_in_the_settings_is_named_and_nothing_changes(
    cli: Cli, context: AppContext, team: None, workdir: Path
) -> None:
    write_campaign(workdir)
    with (workdir / "broadcaster.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[consent.purposes.marketing]\ncaps_per_24h = { sms = 2 }\n")
    before = database_dump(context.engine)

    result = cli("campaigns", "load", CAMPAIGN_FILE, user="bien_tap", expect=1)

    message = _said(result)
    assert "broadcaster.toml: invalid settings" in message
    assert "[consent.purposes.marketing]: unknown purpose 'marketing'" in message
    assert database_dump(context.engine) == before
