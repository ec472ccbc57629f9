"""A campaign goes out through an adapter the engine has never heard of (``tests/toy.py``), named only by
its import path in a provider section: planned, dispatched and recorded like any other. Adding a provider
type touches no engine module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from broadcaster.db.models import MessagePart
from broadcaster.vocabulary import MessageStatus
from channels.registry import ADAPTERS
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.workdir_files import citizens
from tests.toy import ToyAdapter

TOY = "tests.toy:ToyAdapter"


@pytest.fixture(autouse=True)
def empty_toy() -> Iterator[None]:
    ToyAdapter.sent.clear()
    yield
    ToyAdapter.sent.clear()


def test_a_campaign_goes_out_through_a_toy_adapter(make_pipeline: PipelineFactory) -> None:
    assert all(target != TOY for target, _channel in ADAPTERS.values())  # known through its settings alone
    pipeline = make_pipeline(providers={"toy": {"channel": "sms", "type": TOY, "prefix": "do-choi"}})
    people = citizens(25)
    pipeline.add_contacts(people)
    campaign_id = pipeline.approved_campaign(
        channels={"sms": {"template": "sms/thu-nghiem", "provider": "toy"}}
    )

    run_id = pipeline.send(campaign_id)

    messages = pipeline.messages(run_id)
    assert {(m.provider, m.status) for m in messages} == {("toy", MessageStatus.SENT)}
    assert len(messages) == len(people)
    assert sorted(m.message_id for m in ToyAdapter.sent) == [m.id for m in messages]  # each once
    bodies = {m.id: m.body for m in messages}
    assert all(sent.body == bodies[sent.message_id] and sent.body for sent in ToyAdapter.sent)
    with pipeline.context.readers() as session:
        parts = session.execute(select(MessagePart.message_id, MessagePart.provider_id)).all()
    assert sorted(parts) == [(m.id, f"do-choi-{m.id}") for m in messages]
