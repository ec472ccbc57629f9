"""Log lines of real sends: JSON lines carry the run, campaign and provider; ``--log-format json`` on a
command gives lines a program can read; no log line of an SMS test send shows the phone number."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from broadcaster.logs import JsonFormatter, configure_logging, write_json
from broadcaster.runtime import WorkerSpec, worker_env
from broadcaster.settings import LOG_FORMAT_ENV, load_settings
from channels.sandbox.smtp import SmtpBehaviour
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_failures import email_campaign
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.broadcaster.test_cli import Cli

PHONE = "0912345678"
EMAIL = "Nguyen.Van.An@danang.gov.vn"


@pytest.fixture
def cli(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv(LOG_FORMAT_ENV, "text")  # restored afterwards, whatever --log-format sets
    yield Cli(monkeypatch)
    configure_logging("text")


@pytest.fixture
def dispatch_lines() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = write_json(logging.StreamHandler(buffer))
    logger = logging.getLogger("broadcaster.outbox.dispatch")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield buffer
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_dispatch_writes_json_lines_with_its_run_campaign_and_provider(
    pipeline: Pipeline, dispatch_lines: io.StringIO
) -> None:
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.approved_campaign()
    run_id = pipeline.send(campaign_id)

    lines = [json.loads(line) for line in dispatch_lines.getvalue().splitlines()]
    chunks = [line for line in lines if str(line["message"]).startswith("chunk ")]
    assert {line["provider"] for line in chunks} == {"sms_main", "mail"}
    for line in chunks:
        assert line["run_id"] == run_id
        assert line["campaign_id"] == campaign_id
        assert isinstance(line["chunk_id"], int)
        assert line["level"] == "INFO"


def test_log_format_json_on_a_command_writes_json_lines_and_reaches_the_settings(
    pipeline: Pipeline, cli: Cli
) -> None:
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.load_campaign(pipeline.write_campaign())
    pipeline.smtp.stop()  # the relay is down: the adapter logs a warning

    result = cli(
        "--log-format", "json", "campaigns", "test-send", campaign_id, "--to", EMAIL, user=EDITOR, expect=1
    )

    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert logged, result.stderr
    assert all({"time", "level", "logger", "message"} <= set(line) for line in logged)
    assert any(line["logger"].startswith("channels.email") for line in logged)
    assert "Nguyen.Van.An" not in result.stderr
    # The one line for the officer is still there, as text.
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")]
    # What the workers it would start inherit.
    assert load_settings().logging.format == "json"
    assert worker_env(WorkerSpec(name="main", queues=("plan",)), pipeline.config)[LOG_FORMAT_ENV] == "json"


def test_the_json_setting_reaches_celery_workers_handlers(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    from broadcaster.tasks import _log_format

    monkeypatch.chdir(pipeline.directory)
    logger = logging.getLogger("tests.worker_root")  # stands for the root logger Celery set up
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    request.addfinalizer(lambda: logger.removeHandler(handler))
    monkeypatch.setenv(LOG_FORMAT_ENV, "text")
    _log_format(logger=logger)
    assert not isinstance(handler.formatter, JsonFormatter)
    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    _log_format(logger=logger)
    assert isinstance(handler.formatter, JsonFormatter)


def test_no_log_line_of_an_sms_test_send_shows_the_phone_number(
    pipeline: Pipeline, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline.add_contacts(citizens(3))
    campaign_id = pipeline.load_campaign(pipeline.write_campaign())
    caplog.set_level(logging.DEBUG)

    cli("campaigns", "test-send", campaign_id, "--to", PHONE, user=EDITOR)

    assert pipeline.smsc.wait_until(lambda s: len(s.accepted) == 1)
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("broadcaster", "channels")]
    assert any("091****678" in r.getMessage() for r in ours)  # the adapter did log the part it wrote
    for record in caplog.records:
        shown = record.getMessage() + repr(vars(record))
        assert PHONE[1:] not in shown, (record.name, record.getMessage())


def test_log_lines_of_a_campaign_paused_by_rejected_recipients_mask_their_addresses(
    make_pipeline: PipelineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    people = citizens(40)
    bad = [p["email"] for p in people[:30]]  # enough of one window to pause the campaign
    pipeline = make_pipeline(smtp=SmtpBehaviour(reject_recipients=bad))
    pipeline.add_contacts(people)
    caplog.set_level(logging.DEBUG)

    pipeline.send(email_campaign(pipeline))

    paused = [r for r in caplog.records if r.getMessage().startswith("paused campaign")]
    assert paused
    assert "***@" in paused[0].getMessage()
    # The engine's lines; the sandbox relay (aiosmtpd's ``mail.log``) is the peer, and logs what it received.
    for record in [r for r in caplog.records if r.name.split(".")[0] in ("broadcaster", "channels")]:
        shown = record.getMessage() + repr(vars(record))
        assert not [address for address in bad if address.split("@")[0] in shown], record.getMessage()
