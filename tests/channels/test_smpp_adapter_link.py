"""SmppAdapter's link to the SMSC: reconnecting, enquire_link, an SMSC that never answers, no SMSC at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from channels.base import SendOutcome
from channels.errors import ConnectionLost, OutcomeUnknown
from channels.sms.smpp import SmppAdapter
from tests.channels.smpp_sending import message
from tests.conftest import free_port
from tests.peers.mute_smsc import MuteSmsc
from tests.peers.smsc import SmscBehaviour, adapter_for, running_smsc


def test_connection_drop_reconnects_and_sending_resumes() -> None:
    port = free_port()
    with running_smsc(SmscBehaviour(receipts=False), port=port) as smsc:
        adapter = adapter_for(smsc, pdu_timeout=0.5)
        adapter.open()
    try:
        # The SMSC is gone: nothing can be written, so the engine may safely resend.
        (down,) = adapter.send([message(1)])
        assert isinstance(down.error, ConnectionLost)
        with running_smsc(SmscBehaviour(receipts=False), port=port) as again:
            assert adapter.wait_bound(10)
            (up,) = adapter.send([message(2)])
            assert up.outcome is SendOutcome.SENT
            assert [r.destination for r in again.accepted] == ["84900000002"]
            # A cut in the middle of the session (no stop): the reader notices and binds again.
            again.drop_connections()
            assert again.wait_until(lambda s: len(s.connections) == 2 and s.bound_sessions == 1)
            assert adapter.wait_bound(10)
            (after,) = adapter.send([message(3)])
            assert after.outcome is SendOutcome.SENT
            assert adapter.stats()["connects"] == 3
    finally:
        adapter.close()


def test_enquire_link_keeps_an_idle_bind_alive() -> None:
    behaviour = SmscBehaviour(idle_timeout=0.6, receipts=False)
    with running_smsc(behaviour) as smsc, adapter_for(smsc, enquire_link_interval=0.15) as adapter:
        assert smsc.wait_until(lambda s: s.connections and s.connections[0].enquire_links >= 8, timeout=10)
        (connection,) = smsc.connections
        assert connection.closed_reason is None
        stats = adapter.stats()
        assert stats["connects"] == 1
        assert stats["enquire_links_answered"] >= 7
        assert adapter.send([message(1)])[0].outcome is SendOutcome.SENT


def test_without_enquire_link_the_idle_smsc_cuts_and_the_adapter_rebinds() -> None:
    behaviour = SmscBehaviour(idle_timeout=0.5, receipts=False)
    with running_smsc(behaviour) as smsc, adapter_for(smsc, enquire_link_interval=30.0) as adapter:
        assert smsc.wait_until(
            lambda s: any(c.closed_reason == "idle timeout" for c in s.connections), timeout=10
        )
        assert smsc.wait_until(lambda s: len(s.connections) >= 2 and s.bound_sessions == 1, timeout=10)
        assert adapter.wait_bound(10)
        assert adapter.send([message(1)])[0].outcome is SendOutcome.SENT


@pytest.fixture
def mute() -> Iterator[Any]:
    servers: list[MuteSmsc] = []

    def make(on_submit: str) -> MuteSmsc:
        servers.append(MuteSmsc(on_submit=on_submit))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("on_submit", ["ignore", "hang up"])
def test_no_answer_after_the_write_is_outcome_unknown(mute: Any, on_submit: str) -> None:
    server = mute(on_submit)
    adapter = SmppAdapter(
        host="127.0.0.1",
        port=server.port,
        system_id="x",
        password="y",
        source_addr="DANANG",
        pdu_timeout=0.5,
        reconnect_initial=5.0,
    )
    with adapter:
        (result,) = adapter.send([message(1)])
    assert isinstance(result.error, OutcomeUnknown)
    assert server.submits == 1


def test_open_against_nothing_raises_connection_lost() -> None:
    adapter = SmppAdapter(host="127.0.0.1", port=free_port(), system_id="x", password="y", source_addr="Z")
    with pytest.raises(ConnectionLost):
        adapter.open()
    (result,) = adapter.send([message(1)])
    assert isinstance(result.error, ConnectionLost)
