"""Prometheus metrics read from the outbox at each scrape: in ``broadcaster metrics`` and, behind a bearer
token, in ``serve``."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from broadcaster.db.models import InboundRecord
from broadcaster.observe.heartbeat import record_beat
from broadcaster.observe.metrics import METRIC_NAMES, registry_for
from broadcaster.outbox.instruments import MULTIPROC_ENV
from broadcaster.web.app import create_app
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_failures import email_campaign
from tests.broadcaster.delivery.workdir_files import citizens
from tests.conftest import free_port
from tests.peers.polling import wait_until

TOKEN = "metrics-token-for-tests"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(pipeline: Pipeline) -> Samples:
    return samples(generate_latest(registry_for(pipeline.context)).decode())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def any_database(request: pytest.FixtureRequest, make_pipeline: PipelineFactory) -> Pipeline:
    """SQLite counts from message_tallies, PostgreSQL from the messages' indexes: both give the figures."""
    if request.param == "sqlite":
        return make_pipeline()
    return make_pipeline(database_url=request.getfixturevalue("postgres_url"))


def test_a_scrape_reads_the_backlog_receipts_pauses_and_the_tick(any_database: Pipeline) -> None:
    pipeline = any_database
    pipeline.add_contacts(citizens(3))
    campaign_id = email_campaign(pipeline)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    record_beat(pipeline.context.sessions, clock=pipeline.clock)
    with pipeline.context.sessions.begin() as session:
        session.add(
            InboundRecord(provider="sms_main", channel="sms", received_at=pipeline.clock.now(), payload={})
        )
    pipeline.pause(campaign_id)
    pipeline.advance(seconds=90)

    got = scrape(pipeline)

    assert got[("broadcaster_up", ())] == 1
    assert got[("broadcaster_broker_up", ())] == 1
    waiting = (("channel", "email"), ("provider", "mail"), ("status", "queued"))
    assert got[("broadcaster_messages_waiting", waiting)] == 3
    assert got[("broadcaster_messages", (("channel", "email"), ("status", "queued")))] == 3
    assert got[("broadcaster_backlog_age_seconds", ())] == 90
    assert got[("broadcaster_receipts_pending", (("provider", "sms_main"),))] == 1
    assert got[("broadcaster_campaigns_paused", ())] == 1
    assert got[("broadcaster_tick_age_seconds", ())] == 90
    assert {name for name, _labels in got} <= set(METRIC_NAMES)  # no process metrics without the directory


def test_every_declared_metric_is_exposed(pipeline: Pipeline) -> None:
    """docker/prometheus/alerts.yml is checked against METRIC_NAMES: each name there must be real."""
    text = generate_latest(registry_for(pipeline.context)).decode()
    declared = {family.name for family in text_string_to_metric_families(text)}
    assert declared == set(METRIC_NAMES)


def test_serve_shows_metrics_only_to_the_token(make_pipeline: PipelineFactory) -> None:
    closed = make_pipeline(name="closed")
    with TestClient(create_app(closed.context)) as client:
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404

    opened = make_pipeline(name="opened", settings_sections={"metrics": {"token": TOKEN}})
    with TestClient(create_app(opened.context)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert samples(answer.text)[("broadcaster_up", ())] == 1


@contextlib.contextmanager
def running_metrics(directory: Path, *options: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``broadcaster metrics`` in ``directory`` on a free port, as its own process; stopped afterwards."""
    port = free_port()
    # An engine process: started by a login with the editor or admin role, as an operator would.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "LOGNAME": ADMIN_LOGIN, "USER": ADMIN_LOGIN}
    command = [
        sys.executable,
        "-c",
        "from broadcaster.cli import main; main()",
        "metrics",
        "--port",
        str(port),
    ]
    # Our own interpreter and arguments: nothing untrusted.
    process = subprocess.Popen(  # noqa: S603
        [*command, *options], cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def metrics_process(pipeline: Pipeline) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    with running_metrics(pipeline.directory, "--no-alerts") as running:
        yield running


def test_broadcaster_metrics_serves_the_scrape(
    pipeline: Pipeline, metrics_process: tuple[subprocess.Popen[bytes], int]
) -> None:
    process, port = metrics_process

    def answered() -> str | None:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                return str(reply.read().decode())
        except OSError:
            return None

    text = wait_until(answered, what="broadcaster metrics answering /metrics")
    assert samples(text)[("broadcaster_up", ())] == 1
    process.terminate()
    assert process.wait(timeout=30) == 0


def test_the_dispatcher_times_its_windows(pipeline: Pipeline) -> None:
    labels = {"channel": "email", "provider": "mail"}
    before = REGISTRY.get_sample_value("broadcaster_send_window_seconds_count", labels) or 0.0
    pipeline.add_contacts(citizens(3))
    pipeline.send(email_campaign(pipeline))
    after = REGISTRY.get_sample_value("broadcaster_send_window_seconds_count", labels)
    assert after is not None
    assert after > before


def test_the_workers_process_metrics_of_this_host_are_added_up(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prometheus"
    observe = (
        "from broadcaster.outbox.instruments import BUCKET_WAIT_SECONDS, SEND_WINDOW_SECONDS\n"
        "SEND_WINDOW_SECONDS.labels('sms', 'sms_main').observe(0.2)\n"
        "BUCKET_WAIT_SECONDS.labels('sms_main').observe(0.03)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), MULTIPROC_ENV: str(directory)}
    for _worker in range(2):  # two pool processes of a worker, each with its own file
        subprocess.run([sys.executable, "-c", observe], env=env, check=True)  # noqa: S603
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))

    got = scrape(pipeline)

    window = (("channel", "sms"), ("provider", "sms_main"))
    assert got[("broadcaster_send_window_seconds_count", window)] == 2
    assert got[("broadcaster_send_window_seconds_sum", window)] == pytest.approx(0.4)
    waited = (("le", "0.05"), ("provider", "sms_main"))
    assert got[("broadcaster_bucket_wait_seconds_bucket", waited)] == 2
