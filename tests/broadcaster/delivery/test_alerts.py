"""Alerts to the admins, mailed through the engine's own SMTP provider to the sandbox relay: an incident is
told exactly once, again after the reminder interval, and once more when it is over."""

from __future__ import annotations

from sqlalchemy import select

from broadcaster.campaigns import workflow
from broadcaster.db.monitoring import AlertIncident
from broadcaster.observe.alerts import evaluate_alerts
from broadcaster.observe.conditions import BEAT_STOPPED, CAMPAIGN_PAUSED, CONFIG_ERROR
from broadcaster.observe.heartbeat import last_beat, record_beat
from broadcaster.outbox.queues import RecordingEnqueuer
from broadcaster.tasks import engine_tick
from channels.sandbox.smtp import ReceivedMail, SmtpBehaviour
from tests.broadcaster.conftest import ADMIN_LOGIN
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_failures import campaign_state, email_campaign
from tests.broadcaster.delivery.test_metrics import running_metrics
from tests.broadcaster.delivery.workdir_files import citizens
from tests.peers.polling import wait_until

ADMIN_MAIL = "quan.tri@skhcn.example"
REMIND_SECONDS = 3600.0


def alerting(make_pipeline: PipelineFactory, **options: object) -> Pipeline:
    """A pipeline whose admin has an alert address; the SMPP account (no gateway runs in these tests) is
    given a day before it counts as down, so only the incident under test is told."""
    return make_pipeline(
        settings_sections={
            "org": {"language": "vi"},
            "alerts": {"admins": {ADMIN_LOGIN: ADMIN_MAIL}, "remind_seconds": REMIND_SECONDS},
            "health": {"provider_down_seconds": 86400.0},
        },
        **options,
    )


def alerts_received(pipeline: Pipeline) -> list[ReceivedMail]:
    return [mail for mail in pipeline.smtp.received if ADMIN_MAIL in mail.rcpt_tos]


def subjects(pipeline: Pipeline) -> list[str]:
    return [str(mail.message()["Subject"]) for mail in alerts_received(pipeline)]


def test_a_stopped_tick_is_told_once_reminded_and_its_end_told_once(make_pipeline: PipelineFactory) -> None:
    pipeline = alerting(make_pipeline)
    context = pipeline.context
    record_beat(context.sessions, clock=pipeline.clock)
    assert evaluate_alerts(context) == []

    pipeline.advance(seconds=context.settings.health.beat_stale_seconds + 1)
    [told] = evaluate_alerts(context)
    assert (told.kind, told.what) == (BEAT_STOPPED, "opened")
    assert evaluate_alerts(context) == []  # the same incident: not told twice
    assert subjects(pipeline) == ["[SKHCN] Cảnh báo: tác vụ định kỳ (beat) đã dừng"]
    body = alerts_received(pipeline)[0].message().get_content()
    assert "broadcaster health" in body

    pipeline.advance(seconds=REMIND_SECONDS)
    [reminder] = evaluate_alerts(context)
    assert reminder.what == "reminder"
    assert evaluate_alerts(context) == []

    record_beat(context.sessions, clock=pipeline.clock)  # the beat is back
    [resolved] = evaluate_alerts(context)
    assert resolved.what == "resolved"
    assert evaluate_alerts(context) == []
    assert subjects(pipeline) == [
        "[SKHCN] Cảnh báo: tác vụ định kỳ (beat) đã dừng",
        "[SKHCN] Vẫn đang diễn ra: tác vụ định kỳ (beat) đã dừng",
        "[SKHCN] Đã khắc phục: tác vụ định kỳ (beat) đã dừng",
    ]
    with context.readers() as session:
        [incident] = session.scalars(select(AlertIncident).where(AlertIncident.kind == BEAT_STOPPED)).all()
    assert incident.reminders == 1
    assert incident.resolved_at is not None


def test_a_relay_configuration_error_is_told_when_the_relay_takes_mail_again(
    make_pipeline: PipelineFactory,
) -> None:
    pipeline = alerting(make_pipeline, smtp=SmtpBehaviour(reject_senders=["*"]))
    pipeline.add_contacts(citizens(5))
    campaign_id = email_campaign(pipeline)
    pipeline.send(campaign_id)
    assert campaign_state(pipeline, campaign_id)[0].value == "paused"

    # The relay refuses every sender, the alert's too: nothing is marked told, it is tried again.
    assert evaluate_alerts(pipeline.context) == []
    assert alerts_received(pipeline) == []

    pipeline.smtp.behaviour = SmtpBehaviour()
    [told] = evaluate_alerts(pipeline.context)
    assert (told.kind, told.subject) == (CONFIG_ERROR, "mail")
    assert "5.7.1" in alerts_received(pipeline)[0].message().get_content()
    assert evaluate_alerts(pipeline.context) == []

    with pipeline.context.sessions.begin() as session:
        workflow.resume(session, campaign_id=campaign_id, actor=pipeline.editor, clock=pipeline.clock)
    [resolved] = evaluate_alerts(pipeline.context)
    assert (resolved.kind, resolved.what) == (CONFIG_ERROR, "resolved")
    assert len(alerts_received(pipeline)) == 2


def test_every_tick_writes_its_heartbeat_and_evaluates_the_alerts(make_pipeline: PipelineFactory) -> None:
    pipeline = alerting(make_pipeline)
    context = pipeline.context

    engine_tick(
        context.sessions, settings=context.settings, clock=pipeline.clock, enqueuer=RecordingEnqueuer()
    )

    with context.readers() as session:
        beat = last_beat(session)
        incidents = session.scalars(
            select(AlertIncident.key).where(AlertIncident.resolved_at.is_(None))
        ).all()
    assert beat is not None
    assert beat[0] == pipeline.clock.now()
    # No gateway holds the SMPP account here: an incident opened, not told before its grace.
    assert incidents == ["provider_down:sms_main"]
    assert alerts_received(pipeline) == []


def test_a_campaign_the_engine_paused_is_told_and_one_an_officer_paused_is_not(
    make_pipeline: PipelineFactory,
) -> None:
    people = citizens(40)
    bad = [person["email"] for person in people[:30]]  # 30 of 40 in one window: past the failure share
    pipeline = alerting(make_pipeline, smtp=SmtpBehaviour(reject_recipients=bad))
    pipeline.add_contacts(people)
    failing = email_campaign(pipeline)
    pipeline.send(failing)
    quiet = email_campaign(pipeline, id="tam-dung-tay", title="Tạm dừng tay")
    pipeline.pause(quiet)  # an officer's pause: nothing to tell

    [told] = evaluate_alerts(pipeline.context)

    assert (told.kind, told.subject) == (CAMPAIGN_PAUSED, failing)
    [mail] = alerts_received(pipeline)
    assert "30 of 40" in mail.message().get_content()
    assert evaluate_alerts(pipeline.context) == []


def test_broadcaster_metrics_tells_a_tick_that_stopped(make_pipeline: PipelineFactory) -> None:
    """The tick cannot tell that it stopped itself: the metrics process does."""
    pipeline = alerting(make_pipeline)
    record_beat(pipeline.context.sessions, clock=pipeline.clock)  # the frozen clock's hour: long ago

    with running_metrics(pipeline.directory) as (process, _port):
        [mail] = wait_until(
            lambda: alerts_received(pipeline) or None, what="the metrics process mailing the alert"
        )
        assert process.poll() is None
    assert str(mail.message()["Subject"]) == "[SKHCN] Cảnh báo: tác vụ định kỳ (beat) đã dừng"
