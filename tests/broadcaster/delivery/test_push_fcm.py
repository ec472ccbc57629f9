"""A push campaign through the real FCM adapter against the local FCM peer (HTTP/2, OAuth service account):
the tokens FCM calls unregistered are forgotten and nothing else is; a 429 storm slows the run, its
Retry-After is honoured, and the run completes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from broadcaster.db.models import DeviceToken
from broadcaster.vocabulary import MessageStatus
from channels.sandbox import fcm as fcm_peer
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.test_push_channel import (
    PUSH_CHANNELS,
    register_devices,
    token_of,
    write_push_templates,
)
from tests.broadcaster.delivery.workdir_files import citizens


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[fcm_peer.FcmPeer]:
    unregistered = frozenset(token_of(n) for n in range(0, 1000, 20))  # 5 %: every 20th token
    with fcm_peer.running_fcm(tmp_path, fcm_peer.FcmBehaviour(unregistered=unregistered)) as running:
        yield running


def fcm_pipeline(make_pipeline: PipelineFactory, tmp_path: Path, peer: fcm_peer.FcmPeer) -> Pipeline:
    section = {"channel": "push", "type": "fcm", **fcm_peer.adapter_settings(peer, tmp_path)}
    return make_pipeline(providers={"ung_dung": section})


def thousand_devices(pipeline: Pipeline) -> set[str]:
    """500 people with two devices each: 1,000 tokens, ``token_of(0..999)``."""
    people = citizens(500)
    pipeline.add_contacts(people)
    registered = register_devices(pipeline, {p["external_id"]: 2 for p in people})
    write_push_templates(pipeline)
    return {token for found in registered.values() for token in found}


def test_a_thousand_devices_through_fcm_forget_exactly_the_unregistered(
    make_pipeline: PipelineFactory, tmp_path: Path, peer: fcm_peer.FcmPeer
) -> None:
    pipeline = fcm_pipeline(make_pipeline, tmp_path, peer)
    tokens = thousand_devices(pipeline)
    gone = set(peer.behaviour.unregistered)
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)

    run_id = pipeline.send(campaign_id)

    messages = pipeline.messages(run_id, channel="push")
    assert Counter(m.status for m in messages) == {
        MessageStatus.SENT: 950,
        MessageStatus.PERMANENT_FAILURE: 50,
    }
    assert {m.address for m in messages if m.status == MessageStatus.PERMANENT_FAILURE} == gone
    with pipeline.context.readers() as session:
        assert set(session.scalars(select(DeviceToken.token))) == tokens - gone
    assert set(peer.tokens()) == tokens - gone  # each accepted once, none of the unregistered ones
    assert len(peer.tokens()) == 950
    assert peer.http_versions == {"2"}
    assert len(peer.issued) == 1  # one OAuth access token for the whole run
    sent = [m for m in messages if m.status == MessageStatus.SENT]
    assert all(
        m.provider_ref and m.provider_ref.startswith("projects/danang-city-app/messages/") for m in sent
    )


def test_a_429_storm_slows_the_run_honours_retry_after_and_completes(
    make_pipeline: PipelineFactory, tmp_path: Path, peer: fcm_peer.FcmPeer
) -> None:
    pipeline = fcm_pipeline(make_pipeline, tmp_path, peer)
    tokens = thousand_devices(pipeline)
    gone = set(peer.behaviour.unregistered)
    campaign_id = pipeline.approved_campaign(channels=PUSH_CHANNELS)
    peer.storm(200, retry_after=30)  # the first 200 sends: 429 QUOTA_EXCEEDED, Retry-After: 30
    started = pipeline.clock.now()

    run_id = pipeline.send(campaign_id)
    throttled = [m for m in pipeline.messages(run_id, channel="push") if m.status == MessageStatus.QUEUED]
    for _ in range(20):  # ticks and drains until nothing waits (each pass moves the frozen clock on)
        if not any(m.status == MessageStatus.QUEUED for m in pipeline.messages(run_id, channel="push")):
            break
        pipeline.advance(seconds=31)
        pipeline.tick()
        pipeline.drain()

    messages = pipeline.messages(run_id, channel="push")
    assert Counter(m.status for m in messages) == {
        MessageStatus.SENT: 950,
        MessageStatus.PERMANENT_FAILURE: 50,
    }
    assert set(peer.tokens()) == tokens - gone
    assert len(peer.tokens()) == 950  # every token once: nothing the peer refused was counted as sent
    assert len(throttled) == 200  # the storm's answers held those messages back for a later attempt
    assert peer.requests == 1000 + 200  # each of them asked once more, nothing else again
    assert all(m.attempts >= 2 for m in messages if m.id in {t.id for t in throttled})
    # No message went again before the provider's Retry-After had passed.
    for message in messages:
        if message.id in {t.id for t in throttled} and message.sent_at is not None:
            assert message.sent_at >= started + timedelta(seconds=30)
