"""``broadcaster send … --json``: stdout holds only JSON, with or without ``--wait`` (the progress bar goes to
stderr). The waiting run goes through the real embedded engine (Celery workers) and sandbox servers."""

from __future__ import annotations

import json

import pytest

from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.broadcaster.test_cli import Cli

PEOPLE = 3


@pytest.fixture
def cli(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    return Cli(monkeypatch)


@pytest.mark.slow
def test_send_wait_json_writes_only_json_to_stdout(pipeline: Pipeline, cli: Cli) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign = pipeline.approved_campaign()
    result = cli("send", campaign, "--wait", "--json", user=EDITOR)
    report = json.loads(result.stdout)  # nothing else on stdout
    assert report["messages"]["email"] == {"sent": PEOPLE}
    assert sum(report["messages"]["sms"].values()) == PEOPLE
    assert f"run {report['run_id']}" in result.stderr  # the progress went to stderr


def test_send_json_without_wait_says_which_run_was_queued(pipeline: Pipeline, cli: Cli) -> None:
    pipeline.add_contacts(citizens(PEOPLE))
    campaign = pipeline.approved_campaign()
    report = json.loads(cli("send", campaign, "--json", user=EDITOR).stdout)
    assert report["status"] == "queued"
    assert isinstance(report["run_id"], int)
